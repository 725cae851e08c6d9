"""A deployment's life as someone watching its page sees it: a real worker, the watcher, the emulator
and a websocket client, with no polling by the client. In CI the worker and the watcher are separate
processes and the channel layer is Redis."""

import asyncio
import re
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from deployments import services
from deployments.cluster.connection import get_cluster
from deployments.models import Deployment, DeploymentState, Operation
from diploi_site.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_thread_connections")]

HEALTH = re.compile(r'class="deployment-health" data-health="(\w+)"')


async def next_health(socket: WebsocketCommunicator, wanted: str, *, timeout: float = 45, reason: str = ""):
    """Receive fragments until the header shows ``wanted`` (and ``reason``); return the colours seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = await socket.receive_from(timeout=deadline - time.monotonic())
        match = HEALTH.search(message)
        if match:
            seen.append(match.group(1))
            if match.group(1) == wanted and reason in message:
                return seen
    raise AssertionError(f"never saw {wanted} ({reason!r}); saw {seen}")


async def test_it_shows_a_deployment_come_to_life_break_recover_and_go(
    worker, watcher, emulator, make_project, make_member
):
    owner = await sync_to_async(make_member)("admin")
    project = await sync_to_async(make_project)("django-postgres")
    deployment = await sync_to_async(services.deployment_create)(
        project=project, name="feature-x", stage="development", actor=owner
    )

    socket = WebsocketCommunicator(
        application, f"/ws/deployments/{deployment.pk}/?tab=overview", headers=[(b"origin", b"http://localhost")]
    )
    socket.scope["user"] = owner
    connected, _ = await socket.connect()
    assert connected

    seen = await next_health(socket, "green")
    assert "progress" in seen, seen  # it was starting (progress, not "Degraded") before it was healthy

    emulator.faults.crash(deployment.namespace, selector={"diploi.io/service": "app"}, exit_code=2)
    await next_health(socket, "red", reason="CrashLoopBackOff")

    emulator.faults.heal(deployment.namespace, selector={"diploi.io/service": "app"})
    operation = await sync_to_async(services.deployment_restart)(deployment=deployment, actor=owner, service_id="app")
    await next_health(socket, "green")
    # The healed pod may turn green before the worker records the restart as applied.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        operation = await sync_to_async(Operation.objects.get)(pk=operation.pk)
        if operation.status == Operation.Status.SUCCEEDED:
            break
        await asyncio.sleep(0.1)
    assert (operation.kind, operation.status, operation.requested_by_id) == ("restart", "succeeded", owner.pk)

    await sync_to_async(services.deployment_delete)(deployment=deployment, actor=owner)
    for _ in range(200):
        message = await socket.receive_from(timeout=45)
        if "This deployment was deleted" in message:
            break
    else:
        raise AssertionError("the page was never told the deployment is gone")
    current = await sync_to_async(Deployment.objects.get)(pk=deployment.pk)
    assert current.state == DeploymentState.DELETED
    cluster = get_cluster()
    assert await sync_to_async(cluster.get)("Namespace", deployment.namespace) is None
    claims, _ = await sync_to_async(cluster.list)(
        "PersistentVolumeClaim", label_selector=f"diploi.io/deployment={deployment.pk}"
    )
    assert claims == []
    await socket.disconnect()
