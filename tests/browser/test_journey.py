"""The journey of issue 6 in a real browser, against Diploi as it runs for users."""

import contextlib
import re
import shlex
import subprocess

from playwright.sync_api import expect

from deployments.models import Deployment, Membership, Operation, Role
from tests.browser.conftest import wait_until
from tests.deployments.ssh.gateway.conftest import OpenSSH, generate_key
from tests.support import built

PASSWORD = "correct horse battery"


def sign_in(page, url: str, username: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=re.compile("Projects"))).to_be_visible()


def health(page):
    return page.locator("#deployment-header .deployment-health")


def test_it_takes_a_developer_from_sign_in_to_a_deleted_deployment(
    diploi_on_emulator, page, browser, console_errors, make_member, team, screenshot_on_failure, tmp_path
):
    url = diploi_on_emulator.url
    make_member(Role.ADMIN, username="ada")
    viewer = make_member(Role.VIEWER, username="vic")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)

    # Sign in, start a project from the Django template.
    sign_in(page, url, "ada")
    page.get_by_role("link", name="Templates", exact=True).click()
    page.get_by_role("link", name="Django + PostgreSQL", exact=True).click()
    page.get_by_role("link", name="Start a project").click()
    page.get_by_label("Name", exact=True).fill("Shop")
    page.get_by_label("Short name").fill("shop")
    page.get_by_label("Repository", exact=False).fill("https://github.com/acme/shop.git")
    page.get_by_role("button", name="Create project").click()

    # Create a development deployment: the name is checked as it is typed.
    expect(page.get_by_role("heading", name="New deployment of Shop")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Feature X")
    expect(page.locator("#name-check")).to_contain_text("lowercase")
    page.get_by_label("Name", exact=True).fill("feature-x")
    expect(page.locator("#name-check")).to_contain_text("https://app-feature-x.")
    page.get_by_label(re.compile("Development: runs your code")).check()
    page.get_by_role("button", name="Create deployment").click()

    # The Overview comes to life without reloading: yellow while starting, then green.
    expect(page.get_by_role("heading", name="feature-x")).to_be_visible()
    deployment = Deployment.objects.get(name="feature-x")
    screenshot_on_failure += [("overview", page.url), ("status", f"{url}/deployments/{deployment.pk}/status/")]
    page.evaluate("window.__loadedAt = performance.timeOrigin")
    colours = []
    wait_until(
        page,
        lambda: colours.append(health(page).get_attribute("data-health")) or colours[-1] == "green",
        timeout_ms=45_000,
        what="green",
    )
    assert "yellow" in colours or "unknown" in colours, colours
    expect(health(page)).to_contain_text("Healthy")
    assert page.evaluate("window.__loadedAt") == page.evaluate("performance.timeOrigin"), "the page reloaded"

    # Copy the SSH command.
    command = page.locator("#ssh-command-1").inner_text()
    assert command.startswith("ssh app.feature-x.shop@")  # component.deployment.project
    page.get_by_role("button", name="Copy").first.click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == command

    # Add a key on the profile page, check the host key with the line it shows, paste the command
    # in a terminal: a shell in the component's code directory (here the emulated pod's directory).
    key_path = generate_key(tmp_path / "id_ed25519")
    page.get_by_role("link", name="SSH keys").click()
    (tmp_path / "known_hosts").write_text(page.locator("#known-hosts-line").inner_text() + "\n")
    page.get_by_label("Public key").fill(key_path.with_suffix(".pub").read_text())
    page.get_by_role("button", name="Add key").click()
    expect(page.locator("tr[data-fingerprint]")).to_have_count(1)
    terminal = OpenSSH(port=0, key=key_path, known_hosts=tmp_path / "known_hosts")
    program, *arguments = shlex.split(command)
    shell = subprocess.run(
        [program, *terminal.options(), *arguments], input=b"pwd; ls; exit 5\n", capture_output=True, timeout=60
    )
    assert shell.returncode == 5, shell.stderr
    cwd, *files = shell.stdout.decode().splitlines()
    assert cwd.endswith("/app") and "README.md" in files
    page.goto(f"{url}/deployments/{deployment.pk}/")

    # Restart one component and watch it recover.
    page.locator("details[data-node=services] > summary").click()
    page.locator("details[data-node=services]").get_by_role("button", name="Restart app").click()
    wait_until(
        page,
        lambda: Operation.objects.filter(deployment=deployment, kind="restart", status="succeeded").exists(),
        timeout_ms=30_000,
        what="the restart to be applied",
    )
    expect(health(page)).to_have_attribute("data-health", "green", timeout=45_000)
    page.get_by_role("link", name="Status").click()
    expect(page.locator("#operations")).to_contain_text("Restart app")

    # A viewer sees no destructive buttons and is refused when forcing the request.
    viewer_context = browser.new_context()
    viewer_page = viewer_context.new_page()
    viewer_errors = []
    viewer_page.on("console", lambda msg: viewer_errors.append(msg.text) if msg.type == "error" else None)
    sign_in(viewer_page, url, "vic")
    viewer_page.goto(f"{url}/deployments/{deployment.pk}/")
    expect(viewer_page.get_by_role("heading", name="feature-x")).to_be_visible()
    expect(viewer_page.get_by_role("button", name=re.compile("Restart"))).to_have_count(0)
    viewer_page.goto(f"{url}/deployments/{deployment.pk}/options/")
    expect(viewer_page.get_by_role("button", name="Delete deployment")).to_have_count(0)
    token = next(c["value"] for c in viewer_context.cookies() if c["name"] == "csrftoken")
    forced = viewer_page.request.post(
        f"{url}/deployments/{deployment.pk}/restart/",
        form={"service": "app"},
        headers={"X-CSRFToken": token, "Referer": url + "/"},
    )
    assert forced.status == 403
    forced = viewer_page.request.post(
        f"{url}/deployments/{deployment.pk}/delete/",
        form={"confirm": "feature-x"},
        headers={"X-CSRFToken": token, "Referer": url + "/"},
    )
    assert forced.status == 403
    assert Operation.objects.filter(deployment=deployment, kind="delete").count() == 0
    assert Membership.objects.get(user=viewer).role == Role.VIEWER
    viewer_context.close()
    assert viewer_errors == []

    # Delete with the typed confirmation: it disappears from the list.
    page.get_by_role("link", name="Options").click()
    page.get_by_label("Type the deployment's name to confirm").fill("feature-x")
    page.get_by_role("button", name="Delete deployment").click()
    expect(page.get_by_role("heading", name="Shop")).to_be_visible()
    expect(page.locator("#deployment-list")).not_to_contain_text("feature-x", timeout=45_000)
    assert Deployment.objects.get(pk=deployment.pk).state == "deleted"
    assert console_errors == []


def test_it_works_on_a_phone_screen(
    diploi_on_emulator, page, console_errors, make_member, make_project, screenshot_on_failure
):
    from deployments import services

    admin = make_member(Role.ADMIN, username="pia")
    deployment = services.deployment_create(project=make_project(), name="phone", stage="development", actor=admin)
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, diploi_on_emulator.url, "pia")
    for path in (
        "/projects/",
        f"/projects/{deployment.project_id}/",
        f"/deployments/{deployment.pk}/",
        f"/deployments/{deployment.pk}/status/",
        f"/deployments/{deployment.pk}/options/",
        f"/deployments/{deployment.pk}/activity/",
        "/catalog/",
        f"/projects/{deployment.project_id}/deployments/new/",
    ):
        page.goto(diploi_on_emulator.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width}px wide on a 390px screen"
    assert console_errors == []


def test_the_project_page_follows_a_deployments_health_without_reloading(
    diploi_on_emulator, emulator, page, console_errors, make_member, make_project, screenshot_on_failure
):
    from deployments import lifecycle, services

    admin = make_member(Role.ADMIN, username="rob")
    project = make_project("static-nginx")
    # Production runs what was built: each is reported built first, as a CI would.
    steady = built(services.deployment_create(project=project, name="steady", stage="production", actor=admin))
    flaky = built(services.deployment_create(project=project, name="flaky", stage="production", actor=admin))
    # Applied from here as the worker's task does: on the embedded defaults this
    # process's task queue is its own, not the server's. On Redis the server's
    # worker gets the task too; whichever holds the deployment's lease applies it.
    for deployment in (steady, flaky):
        with contextlib.suppress(lifecycle.LeaseBusy):
            lifecycle.reconcile_run(deployment.pk, owner="test")
    sign_in(page, diploi_on_emulator.url, "rob")
    page.goto(f"{diploi_on_emulator.url}/projects/{project.pk}/")
    page.evaluate("window.__loadedAt = performance.timeOrigin")
    flaky_row = page.locator(f"#deployment-row-{flaky.pk}")
    expect(flaky_row).to_contain_text("Healthy", timeout=45_000)
    expect(page.locator(f"#deployment-row-{steady.pk}")).to_contain_text("Healthy", timeout=45_000)

    emulator.faults.crash(flaky.namespace, selector={"diploi.io/service": "web"}, exit_code=3)

    expect(flaky_row).to_contain_text("last exit 3", timeout=45_000)
    expect(page.locator(f"#deployment-row-{steady.pk}")).to_contain_text("Healthy")
    expect(page.locator("#deployment-list tbody tr")).to_have_count(2)
    assert page.evaluate("window.__loadedAt") == page.evaluate("performance.timeOrigin"), "the page reloaded"
    assert console_errors == []
