"""The poller asks each app for its status through the API server's service proxy (the real client against
the emulator) and stores what changed; the watcher rolls it into the stored status and publishes it."""

from __future__ import annotations

import threading

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from deployments import lifecycle, services
from deployments.appstatus import poller
from deployments.appstatus.models import AppStatusReport
from deployments.cluster.connection import get_cluster
from deployments.models import DeploymentStatus, Role
from deployments.watcher import ClusterWatcher
from diploi_site.asgi import application
from tests.support import wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def fast_app_status(settings):
    settings.STATUS_GRACE_SECONDS = 2
    settings.APP_STATUS_SECONDS = 1
    settings.APP_STATUS_GRACE_SECONDS = 2
    settings.APP_STATUS_TIMEOUT_SECONDS = 1


@pytest.fixture
def deployment(make_project, developer, emulator, fast_app_status):
    deployment = services.deployment_create(
        project=make_project("django-postgres"), name="feature-x", stage="development", actor=developer
    )
    assert lifecycle.reconcile_run(deployment.pk, owner="test") == "applied"
    return deployment


@pytest.fixture
def watcher(transactional_db, emulator, fast_app_status):
    """The watcher thread, which reads the rows on a connection of its own: they must be committed."""
    watcher = ClusterWatcher(get_cluster, coalesce=0.05, recompute_every=0.5, resync_every=3600).start()
    yield watcher
    watcher.stop()


def tree_of(deployment) -> dict:
    status = DeploymentStatus.objects.filter(deployment=deployment).first()
    return (status and status.tree) or {}


def app_items(deployment) -> dict[str, dict]:
    items = (tree_of(deployment).get("nodes") or {}).get("services", {}).get("items", [])
    return {item["key"]: item for item in items if item.get("kind") == "app-status"}


def report_of(deployment) -> AppStatusReport | None:
    return AppStatusReport.objects.filter(deployment=deployment).first()


def poll_until_answered(deployment) -> AppStatusReport:
    """Poll until the app answered in Diploi's format (its pods ready); returns its report."""

    def answered():
        poller.poll_round(get_cluster())
        report = report_of(deployment)
        return report is not None and not report.error and report

    return wait_for(answered, timeout=20, what="the app's items")


def green_with_items(deployment) -> None:
    wait_for(
        lambda: tree_of(deployment).get("health") == "green" and "app:app" in app_items(deployment),
        timeout=30,
        what="green with the app's own items",
    )


def stored(deployment, health: str) -> DeploymentStatus:
    def reached():
        status = DeploymentStatus.objects.get(deployment=deployment)
        return status.health == health and status

    return wait_for(reached, timeout=20, what=health)


def test_it_asks_through_the_service_proxy_and_stores_only_what_changed(deployment, emulator):
    emulator.audit.enable()
    # Nothing ready behind the Service yet: the API server says so, and that does not count against the app.
    assert poller.poll_round(get_cluster()) == {deployment.pk}
    report = report_of(deployment)
    assert report.error == 'no endpoints available for service "app"' and report.failing_since is None
    requests = [r for r in emulator.audit.records() if r.rbac_resource == "services/proxy"]
    assert requests and requests[0].verbs == ("get",) and requests[0].namespace == deployment.namespace

    report = poll_until_answered(deployment)
    assert {item["identifier"]: item["status"] for item in report.items} == {
        "app": "green",
        "postgres-connection": "green",
    }
    changed_at = report.changed_at
    assert poller.poll_round(get_cluster()) == set()  # the same answer: nothing written
    assert report_of(deployment).changed_at == changed_at


def test_an_app_at_fault_starts_the_grace_clock_once_and_an_answer_stops_it(deployment, emulator):
    poll_until_answered(deployment)
    emulator.faults.app_unreachable(deployment.namespace, "app")
    poller.poll_round(get_cluster())
    first = report_of(deployment)
    assert first.error.startswith("error trying to reach service: dial tcp ")
    assert first.failing_since is not None
    emulator.faults.app_garbage(deployment.namespace, "app")
    poller.poll_round(get_cluster())
    second = report_of(deployment)
    assert second.error.startswith("the answer is not JSON")
    assert second.failing_since == first.failing_since  # still failing, since the first failure
    emulator.faults.heal_app_status(deployment.namespace)
    emulator.faults.hang(3, path_contains="/proxy/")
    poller.poll_round(get_cluster())
    assert report_of(deployment).error == "no answer in time"
    emulator.faults.clear()
    poller.poll_round(get_cluster())
    assert report_of(deployment).error == "" and report_of(deployment).failing_since is None


def test_a_pending_item_keeps_the_moment_it_became_pending(deployment, emulator):
    emulator.timing.app_status_warmup = 30  # the stand-in app says "starting" (yellow, pending) for 30 s

    first = poll_until_answered(deployment)
    app = next(item for item in first.items if item["identifier"] == "app")
    assert app["pending"] and app["status"] == "yellow" and app["pending_since"]
    emulator.faults.app_status(deployment.namespace, "app", status="yellow", message="Still starting")
    poller.poll_round(get_cluster())
    again = next(item for item in report_of(deployment).items if item["identifier"] == "app")
    assert again["message"] == "Still starting" and again["pending_since"] == app["pending_since"]


def test_a_disabled_deployment_is_not_asked_and_its_report_goes(deployment, developer, emulator):
    poller.poll_round(get_cluster())
    assert report_of(deployment) is not None
    services.deployment_update(deployment=deployment, actor=developer, enabled=False)
    assert poller.poll_round(get_cluster()) == {deployment.pk}
    assert report_of(deployment) is None


def test_an_item_turning_yellow_turns_the_deployment_yellow_then_green_again(deployment, emulator, watcher):
    green_with_items(deployment)
    assert app_items(deployment)["app:app"]["health"] == "green"
    emulator.faults.app_status(deployment.namespace, "app", status="yellow", message="Cache warming up")

    status = stored(deployment, "yellow")
    assert status.reason == "app: Cache warming up"
    item = app_items(deployment)["app:app"]
    assert (item["health"], item["reported_by"]) == ("yellow", "Django")
    assert status.tree["nodes"]["services"]["health"] == "yellow"
    # The stored status is what lists and counts read.
    project = deployment.project
    assert project.team.projects.filter(pk=project.pk, deployments__status__health="yellow").exists()

    emulator.faults.app_status(deployment.namespace, "app", status="red", message="Migrations failed")
    assert stored(deployment, "red").reason == "app: Migrations failed"
    emulator.faults.heal_app_status(deployment.namespace)
    stored(deployment, "green")


def test_an_app_that_does_not_answer_is_unknown_then_yellow_after_the_grace_never_red(deployment, emulator, watcher):
    green_with_items(deployment)
    seen: set[str] = set()
    stop = threading.Event()

    def record():
        while not stop.wait(0.05):
            seen.add(tree_of(deployment).get("health"))

    recorder = threading.Thread(target=record)
    recorder.start()
    try:
        emulator.faults.app_unreachable(deployment.namespace, "app")
        unknown = wait_for(
            lambda: (item := app_items(deployment).get("app status")) and item["health"] == "unknown" and item,
            timeout=20,
            what="status unknown",
        )
        assert unknown["reason"].startswith("Django status unknown: error trying to reach service")
        assert tree_of(deployment)["health"] == "green"  # not yet: within the grace period

        status = stored(deployment, "yellow")
        assert status.reason.startswith("Django status unknown: error trying to reach service")
        # A while longer: still yellow, never red.
        # (The recorder saw it too: stopped before its next look, it could miss the yellow just read.)
        wait_for(lambda: "yellow" in seen and tree_of(deployment)["health"] == "yellow", timeout=5, what="still yellow")
    finally:
        stop.set()
        recorder.join()
    assert "red" not in seen
    assert {"green", "yellow"} <= seen


def test_outsiders_see_nothing_of_it(deployment, emulator, watcher, client, make_member, make_user, team):
    green_with_items(deployment)
    viewer = make_member(Role.VIEWER)
    client.force_login(viewer)
    page = client.get(reverse("deployment_status", args=[deployment.pk]))
    assert page.status_code == 200
    assert 'data-key="app:app"' in page.content.decode()
    assert "Reported by Django" in page.content.decode()

    other_team = type(team).objects.create(name="Other", slug="other-team")
    outsider = make_member(Role.ADMIN, of=other_team)
    client.force_login(outsider)
    for name in ("deployment_status", "deployment"):
        response = client.get(reverse(name, args=[deployment.pk]))
        assert response.status_code == 404
        assert "app:app" not in response.content.decode()


@pytest.mark.usefixtures("close_thread_connections")
async def test_a_change_of_items_reaches_an_open_page(deployment, emulator, watcher, make_member):
    viewer = await database_sync_to_async(make_member)(Role.VIEWER)
    await database_sync_to_async(green_with_items)(deployment)
    page = WebsocketCommunicator(
        application, f"/ws/deployments/{deployment.pk}/?tab=status", headers=[(b"origin", b"http://localhost")]
    )
    page.scope["user"] = viewer
    connected, _ = await page.connect()
    assert connected
    assert 'data-key="app:app" data-health="green"' in await page.receive_from(timeout=5)
    emulator.faults.app_status(deployment.namespace, "app", status="yellow", message="Cache warming up")
    while True:
        message = await page.receive_from(timeout=20)
        if 'data-key="app:app" data-health="yellow"' in message:
            break
    assert "app: Cache warming up" in message
    await page.disconnect()


def test_the_api_server_failing_leaves_what_the_app_last_said(deployment, emulator):
    before = poll_until_answered(deployment)
    emulator.faults.fail_requests(500, path_contains="/proxy/")
    assert poller.poll_round(get_cluster()) == set()
    emulator.faults.clear()
    emulator.faults.fail_requests(429, path_contains="/proxy/", retry_after=1)
    assert poller.poll_round(get_cluster()) == set()
    after = report_of(deployment)
    assert (after.items, after.error, after.changed_at) == (before.items, "", before.changed_at)


def test_the_lease_outlasts_a_round_of_silent_apps(deployment, settings):
    settings.APP_STATUS_CONCURRENCY = 8
    # 1 s intervals, 1 s timeout: three intervals, plus one batch of (at most 8) apps timing out.
    assert poller.lease_seconds() == 3 + 1
