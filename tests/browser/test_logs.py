"""The Logs tab in Chromium: lines arrive, filter, pause/follow, timestamps, reconnect, download."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from deployments import services
from deployments.cluster import labels
from deployments.cluster.connection import get_cluster
from deployments.models import Deployment, Role
from tests.browser.test_journey import sign_in
from tests.support import wait_for


def running_pod(deployment) -> str:
    def pods():
        found, _ = get_cluster().list(
            "Pod", namespace=deployment.namespace, label_selector=labels.deployment_selector(deployment.pk)
        )
        return [
            p["metadata"]["name"]
            for p in found
            if p["metadata"]["labels"].get(labels.SERVICE) == "app" and p.get("status", {}).get("phase") == "Running"
        ]

    return wait_for(pods, timeout=60, what="a running app pod")[0]


def test_a_viewer_follows_filters_pauses_and_downloads_a_containers_log(
    diploi_on_emulator, emulator, page, console_errors, make_member, make_project, developer, screenshot_on_failure
):
    url = diploi_on_emulator.url
    make_member(Role.VIEWER, username="vic")
    project = make_project("django-postgres")
    deployment = services.deployment_create(project=project, name="dev", stage="development", actor=developer)
    wait_for(lambda: Deployment.objects.get(pk=deployment.pk).applied_generation, timeout=60, what="the worker's apply")
    deployment.refresh_from_db()
    pod = running_pod(deployment)
    namespace = deployment.namespace

    sign_in(page, url, "vic")
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws) if "/logs/" in ws.url else None)
    page.goto(f"{url}/deployments/{deployment.pk}/logs/?pod={pod}&container=app")
    screenshot_on_failure.append(("logs", page.url))
    lines = page.locator(".logs-lines")
    expect(page.locator(".logs-state")).to_have_text("live: caught up")
    expect(lines).to_contain_text("listening")

    emulator.logs.write(namespace, pod, "app", 0, "GET /shop/ HTTP/1.1 200\nPOST /Cart/ HTTP/1.1 302")
    expect(lines).to_contain_text("POST /Cart/ HTTP/1.1 302")

    # The filter is a case-insensitive substring, applied to lines already there and to new ones.
    page.get_by_label("Filter lines").fill("cart")
    expect(page.locator(".log-line:visible")).to_have_count(1)
    emulator.logs.write(namespace, pod, "app", 0, "GET /cart/items HTTP/1.1 200\nGET /health 200")
    expect(page.locator(".log-line:visible")).to_have_count(2)
    page.get_by_label("Filter lines").fill("")

    # Timestamps are hidden until asked for.
    expect(page.locator(".log-stamp").first).to_be_hidden()
    page.get_by_label("timestamps").check()
    expect(page.locator(".log-stamp").first).to_be_visible()

    # Paused, new lines wait; Follow shows them.
    page.get_by_role("button", name="Pause").click()
    emulator.logs.write(namespace, pod, "app", 0, "while paused")
    page.wait_for_timeout(500)
    expect(lines).not_to_contain_text("while paused")
    page.get_by_role("button", name="Follow").click()
    expect(lines).to_contain_text("while paused")

    # The web process dies: the page reconnects when it is back and resumes from the last line it saw,
    # with what was printed meanwhile and nothing twice.
    web = "web" if "web" in diploi_on_emulator.processes else "standalone"
    diploi_on_emulator.kill(web)
    expect(page.locator(".logs-state")).to_contain_text("reconnecting")
    emulator.logs.write(namespace, pod, "app", 0, "printed while the web process was down")
    diploi_on_emulator.restart(web)
    wait_for(diploi_on_emulator._healthy, timeout=60, what="the web process back")
    expect(lines).to_contain_text("printed while the web process was down", timeout=20_000)
    expect(page.locator(".logs-state")).to_have_text("live: caught up")
    emulator.logs.write(namespace, pod, "app", 0, "after the reconnect")
    expect(lines).to_contain_text("after the reconnect")
    texts = page.locator(".log-line").all_inner_texts()
    assert len(sockets) >= 2
    for text in ("listening", "POST /Cart/ HTTP/1.1 302", "while paused"):
        assert len([t for t in texts if text in t]) == 1, (text, texts)

    with page.expect_download() as download:
        page.get_by_role("link", name="Download last 1000 lines").click()
    body = open(download.value.path()).read()
    assert "after the reconnect" in body and "GET /shop/ HTTP/1.1 200" in body
    # Only the reconnect attempts while the web process was down (the browser's, and htmx's ws
    # extension logging the same failed socket of the page header as a bare "Event").
    assert [e for e in console_errors if "ERR_CONNECTION_REFUSED" not in e and e != "Event"] == []


def test_the_templates_sources_open_first_and_a_crashed_containers_last_words_are_one_click_away(
    diploi_on_emulator, emulator, page, console_errors, make_project, developer, screenshot_on_failure
):
    url = diploi_on_emulator.url
    project = make_project("django-postgres")
    deployment = services.deployment_create(project=project, name="dev", stage="development", actor=developer)
    wait_for(lambda: Deployment.objects.get(pk=deployment.pk).applied_generation, timeout=60, what="the worker's apply")
    deployment.refresh_from_db()
    pod = running_pod(deployment)

    sign_in(page, url, developer.username)
    page.goto(f"{url}/deployments/{deployment.pk}/logs/")
    screenshot_on_failure.append(("logs", page.url))
    # The template's first named source: the component's output, every replica, each line naming its pod.
    expect(page.get_by_role("heading", name="Logs: Django")).to_be_visible()
    expect(page.locator(".logs-named a[aria-current]")).to_have_text("Django")
    expect(page.locator(".logs-state")).to_have_text("live: caught up")
    expect(page.locator(".log-pod").first).to_have_text(f"{pod} ")
    expect(page.locator(".logs-lines")).to_contain_text("Starting development server at http://0.0.0.0:8000/")
    page.get_by_role("link", name="PostgreSQL").click()
    expect(page.locator(".logs-lines")).to_contain_text("database system is ready to accept connections")

    # Download since a moment (UTC): only what the container printed from then on.
    app = f"{url}/deployments/{deployment.pk}/logs/?pod={pod}&container=app"
    page.goto(app)
    expect(page.locator(".logs-state")).to_have_text("live: caught up")
    # The next whole second (the field takes seconds): after every line printed so far, however
    # recently the container started; then a line printed after it.
    moment = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    while datetime.now(UTC) <= moment:
        page.wait_for_timeout(100)
    emulator.logs.write(deployment.namespace, pod, "app", 0, "GET /after-the-moment HTTP/1.1 200")
    expect(page.locator(".logs-lines")).to_contain_text("GET /after-the-moment")
    page.get_by_label("Download since (UTC)").fill(moment.strftime("%Y-%m-%dT%H:%M:%S"))
    with page.expect_download() as download:
        page.get_by_role("button", name="Download").click()
    body = open(download.value.path()).read()
    assert "GET /after-the-moment HTTP/1.1 200" in body and "Starting development server" not in body

    # The app crashes: the status tree links its previous container, whose log ends with its last words.
    emulator.faults.crash(deployment.namespace, {labels.SERVICE: "app"}, exit_code=1)
    page.goto(f"{url}/deployments/{deployment.pk}/status/")
    screenshot_on_failure.append(("status", page.url))
    previous = page.get_by_role("link", name=f"Previous container's logs of app in {pod}")
    expect(previous).to_be_visible(timeout=30_000)
    previous.click()
    expect(page.get_by_role("heading", name="Logs previous container")).to_be_visible()
    lines = page.locator(".logs-lines")
    expect(lines).to_contain_text("Traceback (most recent call last):")
    expect(lines).to_contain_text("RuntimeError: simulated crash (an injected fault): exiting with status 1")
    expect(page.locator(".logs-state")).to_have_text("the cluster has no more")
    assert console_errors == []


def test_two_pages_share_a_files_run_and_download_its_last_lines(
    diploi_on_emulator, emulator, page, console_errors, make_project, developer, screenshot_on_failure, tmp_path
):
    from tests.deployments.logs.conftest import with_log_source

    url = diploi_on_emulator.url
    project = make_project("django-postgres")
    deployment = services.deployment_create(project=project, name="dev", stage="development", actor=developer)
    wait_for(lambda: Deployment.objects.get(pk=deployment.pk).applied_generation, timeout=60, what="the worker's apply")
    deployment.refresh_from_db()
    running_pod(deployment)
    log_file = tmp_path / "app.log"
    log_file.write_text("".join(f"request {n}\n" for n in range(1200)))
    with_log_source(deployment, name="App log", component="app", path=str(log_file))
    emulator.audit.enable()

    sign_in(page, url, developer.username)
    other = page.context.new_page()
    for tab in (page, other):
        tab.goto(f"{url}/deployments/{deployment.pk}/logs/?source=App%20log")
        expect(tab.locator(".logs-state")).to_have_text("live: caught up")
        expect(tab.locator(".logs-lines")).to_contain_text("request 1199")
    screenshot_on_failure.append(("logs", page.url))
    with log_file.open("a") as out:
        out.write("GET /both 200\n")
    for tab in (page, other):
        expect(tab.locator(".logs-lines")).to_contain_text("GET /both 200")
    # One `tail -F` for both pages (the second started from the first's run).
    assert len([r for r in emulator.audit.records() if r.subresource == "exec"]) == 1

    expect(page.get_by_text("Download gives the file's last 1000 lines")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the file's last 1000 lines").click()
    body = open(download.value.path()).read().splitlines()
    assert len(body) == 1000 and body[0] == "request 201" and body[-1] == "GET /both 200"
    other.close()
    assert console_errors == []
