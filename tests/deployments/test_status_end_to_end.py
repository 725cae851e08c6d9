"""The status through the real worker and watcher on the emulator, as a page watching over its
websocket sees it: our own operations are progress, never red, and end when their effect is real.
In CI the worker and the watcher are separate processes and the channel layer is Redis."""

import re
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from deployments import services
from deployments.models import Deployment, DeploymentStatus, Operation
from diploi_site.asgi import application
from tests.support import built

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_thread_connections")]

HEALTH = re.compile(r'class="deployment-health" data-health="(\w+)"')


class Page:
    """The Overview of one deployment over its websocket: every header colour it was shown."""

    def __init__(self, deployment, user):
        self.socket = WebsocketCommunicator(
            application, f"/ws/deployments/{deployment.pk}/?tab=overview", headers=[(b"origin", b"http://localhost")]
        )
        self.socket.scope["user"] = user
        self.seen: list[str] = []

    async def __aenter__(self):
        connected, _ = await self.socket.connect()
        assert connected
        return self

    async def __aexit__(self, *exc):
        await self.socket.disconnect()

    async def until_created(self, deployment):
        create = await sync_to_async(deployment.operations.get)(kind=Operation.Kind.CREATE)
        await self.until(operation_ended(create.pk), what="the create to end")

    async def until(self, check, *, timeout: float = 60, what: str = "condition"):
        """Receive fragments (noting colours) until ``check()`` (sync, reads rows) is true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await sync_to_async(check)():
                return
            # receive_from's own timeout would cancel the consumer: wait for output without it.
            if await self.socket.receive_nothing(timeout=0.3, interval=0.05):
                continue
            message = await self.socket.receive_from(timeout=10)
            if match := HEALTH.search(message):
                self.seen.append(match.group(1))
        raise AssertionError(f"never saw {what}; colours seen: {self.seen}")


def operation_ended(operation_id: int):
    def check():
        return not Operation.objects.get(pk=operation_id).is_active

    return check


def health_is(deployment, *healths):
    def check():
        status = DeploymentStatus.objects.filter(deployment=deployment).first()
        return status is not None and status.health in healths

    return check


async def created(make_project, make_member, template="django-postgres", stage="development"):
    owner = await sync_to_async(make_member)("admin")
    project = await sync_to_async(make_project)(template)
    deployment = await sync_to_async(services.deployment_create)(
        project=project, name="feature-x", stage=stage, actor=owner
    )
    return owner, await sync_to_async(built)(deployment)


async def test_a_restart_stays_progress_then_green_and_succeeds_only_after_the_rollout(
    worker, watcher, emulator, make_project, make_member
):
    owner, deployment = await created(make_project, make_member)
    async with Page(deployment, owner) as page:
        await page.until_created(deployment)
        # Creating, postgres's pod waits for its volume (the scheduler: "unbound immediate
        # PersistentVolumeClaims"): progress, not "Degraded".
        assert not {"red", "yellow"} & set(page.seen) and "progress" in page.seen, page.seen

        page.seen.clear()
        restart = await sync_to_async(services.deployment_restart)(deployment=deployment, actor=owner, service_id="app")
        succeeded_while = []

        def ended_and_what_the_status_said():
            # The operation first, then the status: a status read after the success is at least as new.
            operation = Operation.objects.get(pk=restart.pk)
            if operation.is_active:
                return False
            status = DeploymentStatus.objects.get(deployment=deployment)
            succeeded_while.append((operation.status, status.health, status.tree.get("settled")))
            return True

        await page.until(ended_and_what_the_status_said, what="the restart to end")
        # The green row is written before its fragment reaches the page (the watcher pushes it over
        # the channel layer after its commit): under load the operation's end can be read first.
        await page.until(lambda: page.seen[-1:] == ["green"], what="the page to show green")
    assert succeeded_while == [(Operation.Status.SUCCEEDED, "green", True)]
    assert "red" not in page.seen, page.seen
    assert "progress" in page.seen, page.seen  # the rollout showed as progress, then green
    restart = await sync_to_async(Operation.objects.get)(pk=restart.pk)
    assert restart.message == "Restarted: every pod was replaced and the new ones are ready"


@pytest.mark.stack_env(OPERATION_TIMEOUT_SECONDS="8")  # 30 s in the others: it waits for all of it
async def test_a_change_that_crash_loops_fails_its_operation_with_the_reason(
    worker, watcher, emulator, make_project, make_member
):
    owner, deployment = await created(make_project, make_member)
    async with Page(deployment, owner) as page:
        await page.until_created(deployment)

        emulator.faults.crash(deployment.namespace, {"diploi.io/service": "app"}, containers=["app"])
        await sync_to_async(services.deployment_update)(
            deployment=deployment, actor=owner, env_overrides={"app": {"DEBUG": "0"}}
        )
        change = await sync_to_async(Operation.objects.get)(deployment=deployment, kind=Operation.Kind.RECONCILE)
        await page.until(operation_ended(change.pk), timeout=90, what="the change to fail")
    change = await sync_to_async(Operation.objects.get)(pk=change.pk)
    assert change.status == Operation.Status.FAILED
    assert change.message.startswith("Did not take effect within 8 s: app: CrashLoopBackOff"), change.message
    assert "red" in page.seen  # the cluster said something is wrong


async def test_disable_enable_and_delete_are_never_red(worker, watcher, emulator, make_project, make_member):
    owner, deployment = await created(make_project, make_member, template="static-nginx", stage="production")
    async with Page(deployment, owner) as page:
        await page.until_created(deployment)

        await sync_to_async(services.deployment_update)(deployment=deployment, actor=owner, enabled=False)
        await page.until(health_is(deployment, "disabled"), what="disabled")
        disable = await sync_to_async(
            lambda: Operation.objects.filter(deployment=deployment, kind=Operation.Kind.RECONCILE).latest("pk")
        )()
        await page.until(operation_ended(disable.pk), what="the disable to end")

        await sync_to_async(services.deployment_update)(deployment=deployment, actor=owner, enabled=True)
        enable = await sync_to_async(
            lambda: Operation.objects.filter(deployment=deployment, kind=Operation.Kind.RECONCILE).latest("pk")
        )()
        await page.until(operation_ended(enable.pk), what="the enable to end")
        assert await sync_to_async(health_is(deployment, "green"))()

        await sync_to_async(services.deployment_delete)(deployment=deployment, actor=owner)
        await page.until(
            lambda: Deployment.objects.get(pk=deployment.pk).state == "deleted", timeout=90, what="deleted"
        )
    assert "red" not in page.seen, page.seen
    assert {"disabled", "green"} <= set(page.seen), page.seen
    operations = await sync_to_async(list)(deployment.operations.values_list("kind", "status", "attempts"))
    assert all(status == "succeeded" for _, status, _ in operations), operations
    assert all(attempts == 1 for _, _, attempts in operations), operations  # polling a delete is no attempt
