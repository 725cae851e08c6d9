"""The profile page: add, list and remove keys; the gateway's host key."""

from __future__ import annotations

import pytest
from django.urls import reverse

from deployments.ssh.hostkey import host_key_fingerprint, known_hosts_line
from deployments.ssh.models import SSHKey
from deployments.ssh.services import ssh_key_add
from tests.deployments.ssh.conftest import public_line

pytestmark = pytest.mark.django_db


def test_it_needs_a_signed_in_user(client):
    response = client.get(reverse("profile"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_header_links_to_it(developer_client):
    assert f'href="{reverse("profile")}"' in developer_client.get(reverse("projects")).content.decode()


def test_it_adds_a_key_and_lists_it(developer_client, developer, make_key):
    key = make_key()
    response = developer_client.post(reverse("profile"), {"name": "laptop", "public_key": public_line(key)})
    assert response.status_code == 302
    page = developer_client.get(reverse("profile")).content.decode()
    fingerprint = key.get_fingerprint("sha256")
    assert f'<td class="mono">{fingerprint}</td>' in page
    assert "<td>laptop</td>" in page and "ed25519 256" in page and "never" in page
    assert f"Key “laptop” added ({fingerprint})." in page


def test_a_refused_key_is_explained_and_the_input_kept(developer_client, make_key):
    line = public_line(make_key("ssh-rsa", key_size=1024))
    response = developer_client.post(reverse("profile"), {"name": "old", "public_key": line})
    assert response.status_code == 422
    page = response.content.decode()
    assert "This RSA key has 1024 bits; at least 2048 are needed" in page
    assert line.split()[1] in page and 'value="old"' in page
    assert not SSHKey.objects.exists()


def test_it_removes_only_the_users_own_keys(developer_client, developer, make_user, make_key):
    mine = ssh_key_add(user=developer, name="mine", public_key=public_line(make_key()), actor=developer)
    other = make_user()
    theirs = ssh_key_add(user=other, name="theirs", public_key=public_line(make_key()), actor=other)

    response = developer_client.post(reverse("ssh_key_remove"), {"fingerprint": theirs.fingerprint}, follow=True)
    assert f"{developer.username} has no SSH key {theirs.fingerprint}." in response.content.decode()
    assert SSHKey.objects.filter(pk=theirs.pk).exists()

    response = developer_client.post(reverse("ssh_key_remove"), {"fingerprint": mine.fingerprint}, follow=True)
    assert "removed; sessions opened with it are being closed" in response.content.decode()
    assert not SSHKey.objects.filter(pk=mine.pk).exists()


def test_it_shows_the_host_key_to_check(developer_client, settings):
    settings.SSH_HOST, settings.SSH_PORT = "ssh.example.com", 2222
    page = developer_client.get(reverse("profile")).content.decode()
    assert host_key_fingerprint() in page
    assert known_hosts_line() in page and known_hosts_line().startswith("[ssh.example.com]:2222 ssh-ed25519 ")


def test_removing_goes_by_post_only(developer_client):
    assert developer_client.get(reverse("ssh_key_remove")).status_code == 405
