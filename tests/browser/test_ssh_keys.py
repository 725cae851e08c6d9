import re

import asyncssh
from playwright.sync_api import expect

from deployments.models import Role
from deployments.ssh.models import SSHKey


def test_a_user_adds_and_removes_a_key_on_the_profile_page(
    diploi, page, console_errors, make_member, screenshot_on_failure
):
    make_member(Role.DEVELOPER, username="sam")
    key = asyncssh.generate_private_key("ssh-ed25519", comment="sam@laptop")
    fingerprint = key.get_fingerprint("sha256")

    page.goto(f"{diploi.url}/accounts/login/")
    page.get_by_label("Username").fill("sam")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="SSH keys").click()
    expect(page.get_by_role("heading", name="Your SSH keys")).to_be_visible()
    expect(page.locator("#known-hosts-line")).to_have_text(re.compile(r"^\S+ ssh-ed25519 [A-Za-z0-9+/=]+$"))

    page.get_by_label("Public key").fill("ssh-dss AAAAB3NzaC1kc3MAAACBAK")
    page.get_by_role("button", name="Add key").click()
    expect(page.get_by_text("DSA keys are not accepted")).to_be_visible()

    page.get_by_label("Public key").fill(key.export_public_key("openssh").decode())
    page.get_by_role("button", name="Add key").click()
    row = page.locator(f'tr[data-fingerprint="{fingerprint}"]')
    expect(row).to_contain_text("sam@laptop")
    expect(row).to_contain_text("ed25519 256")
    expect(row).to_contain_text("never")
    assert SSHKey.objects.filter(user__username="sam", fingerprint=fingerprint).exists()

    row.get_by_role("button", name="Remove sam@laptop").click()
    expect(page.get_by_text(f"Key {fingerprint} removed")).to_be_visible()
    expect(page.get_by_text("No key yet: add one below.")).to_be_visible()
    # The refused key's page came back 422 (the form with its error), which Chromium logs; nothing else.
    assert len(console_errors) == 1 and "the server responded with a status of 422" in console_errors[0]
