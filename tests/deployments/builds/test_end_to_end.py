"""Staging from the first build to green, and a failed build that keeps the last good version serving:
a real worker (the cluster runner), the watcher, the emulator and a subscribed websocket client."""

import re
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse

from deployments import services
from deployments.builds import services as builds
from deployments.builds.models import Build
from deployments.cluster.connection import get_cluster
from deployments.models import ActivityEntry, Deployment, DeploymentStatus
from diploi_site.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_thread_connections")]

HEALTH = re.compile(r'class="deployment-health" data-health="(\w+)">.*?<span class="reason">([^<]*)<', re.S)


async def receive_until(socket, wanted, *, timeout: float = 60) -> tuple[list[str], str]:
    """Fragments until one render shows every string of ``wanted``: every fragment seen, and that render
    (on connect one frame; for a change, its header first, then a frame with the tab's other fragments)."""
    seen = []
    header = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = await socket.receive_from(timeout=deadline - time.monotonic())
        seen.append(message)
        if message.startswith('<section id="deployment-header"') and 'id="status-tree"' not in message:
            header = message  # a change's header: its other fragments follow
            continue
        shown, header = header + message, ""
        if all(part in shown for part in wanted):
            return seen, shown
    raise AssertionError(f"never saw {wanted}")


def listed(user, deployment: Deployment) -> dict[str, str]:
    """The project page and the team's project list, as ``user`` sees them."""
    client = Client()
    client.force_login(user)
    return {
        "project": client.get(reverse("project", args=[deployment.project_id])).content.decode(),
        "team": client.get(reverse("projects")).content.decode(),
    }


def app_image(deployment: Deployment) -> str:
    workload = get_cluster().get("Deployment", "app", deployment.namespace)
    return workload["spec"]["template"]["spec"]["containers"][0]["image"] if workload else ""


async def test_staging_builds_rolls_out_the_digest_turns_green_and_a_failed_build_keeps_it(
    worker, watcher, emulator, built_project, repository, make_member
):
    owner = await sync_to_async(make_member)("developer")
    deployment = await sync_to_async(services.deployment_create)(
        project=built_project, name="staging", stage="staging", actor=owner
    )
    socket = WebsocketCommunicator(
        application, f"/ws/deployments/{deployment.pk}/?tab=status", headers=[(b"origin", b"http://localhost")]
    )
    socket.scope["user"] = owner
    connected, _ = await socket.connect()
    assert connected

    seen, _ = await receive_until(socket, ['data-health="green"', "app at", "built, running", "All services ready"])
    text = "".join(seen)
    assert "queued" in text or "Building app" in text  # it was seen on its way
    build = await sync_to_async(Build.objects.get)(deployment=deployment)
    assert build.state == "succeeded" and build.commit_sha == repository.first
    assert "=> [5/5] COPY . ." in build.log
    assert await sync_to_async(app_image)(deployment) == f"{build.image}@{build.digest}"

    emulator.faults.fail_builds(step=4, message="pip install: exit code: 1")
    second_commit = await sync_to_async(repository.commit)("breaks the requirements")
    (second,) = await sync_to_async(builds.builds_request)(
        deployment=deployment, trigger="deploy_latest", triggered_by=owner
    )
    assert second.commit_sha == second_commit
    failure = f"Build of app at {second.short_sha} failed"
    # One render carries the header and the tree: the deployment yellow with the build's reason, the
    # Builds node red for that build.
    _, shown = await receive_until(socket, ['data-node="builds" data-health="red"', failure])
    health, reason = HEALTH.search(shown).groups()
    assert (health, reason.strip().startswith(failure)) == ("yellow", True)
    # The last good build keeps serving.
    assert await sync_to_async(app_image)(deployment) == f"{build.image}@{build.digest}"
    # The stored status says so too: the project's deployments and the team's counts agree with the page.
    status = await sync_to_async(DeploymentStatus.objects.get)(deployment=deployment)
    assert (status.health, status.reason.startswith(failure)) == ("yellow", True)
    lists = await sync_to_async(listed)(owner, deployment)
    assert failure in lists["project"] and "1 degraded" in lists["team"] and "failing" not in lists["team"]
    actions = await sync_to_async(list)(
        ActivityEntry.objects.filter(deployment=deployment).values_list("action", flat=True)
    )
    assert {"build.requested", "build.succeeded", "deployment.rolled_out", "build.failed"} <= set(actions)
    await socket.disconnect()
