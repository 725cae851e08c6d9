"""A run's live page through the ASGI application and the real channel layer, the run done by a real
worker (a `celery worker` process in CI) against the emulator."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from deployments.actions import services
from deployments.models import Role
from diploi_site.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_thread_connections")]


async def open_run(user, run, deployment_id: int | None = None) -> tuple[WebsocketCommunicator, bool, int | None]:
    comm = WebsocketCommunicator(
        application,
        f"/ws/deployments/{deployment_id or run.deployment_id}/actions/{run.pk}/",
        headers=[(b"origin", b"http://localhost")],
    )
    comm.scope["user"] = user
    connected, code = await comm.connect(timeout=10)
    return comm, connected, code


async def fragments_until(comm, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        html = await comm.receive_from(timeout=max(deadline - time.monotonic(), 0.01))
        assert 'id="action-run"' in html and 'hx-swap-oob="true"' in html
        if text in html:
            return html


async def test_a_viewer_watches_output_and_the_exit_status_arrive_as_the_worker_runs_it(
    acting, worker, developer, make_member
):
    found = await sync_to_async(acting)()
    viewer = await sync_to_async(make_member)(Role.VIEWER)
    run, _ = await sync_to_async(services.action_run_start)(
        deployment=found.deployment, action_name="Say hello", actor=developer
    )
    comm, connected, _ = await open_run(viewer, run)
    assert connected
    first = await comm.receive_from(timeout=10)  # the current state, whatever it is by now
    assert 'id="action-run"' in first
    html = first if 'data-state="failed"' in first else await fragments_until(comm, 'data-state="failed"')
    assert "to stdout" in html and "to stderr" in html
    assert "<dd data-exit-status>3</dd>" in html and "Exited with status 3." in html
    assert ">Cancel<" not in html  # a viewer has no button
    await comm.disconnect()


async def test_a_developer_cancels_through_the_page_and_sees_it_stop(acting, worker, developer):
    found = await sync_to_async(acting)()
    run, _ = await sync_to_async(services.action_run_start)(
        deployment=found.deployment, action_name="Sleep", actor=developer
    )
    comm, connected, _ = await open_run(developer, run)
    assert connected
    html = await fragments_until(comm, "pid ")
    assert ">Cancel<" in html and 'data-state="running"' in html
    await sync_to_async(services.action_run_cancel)(run=run, actor=developer)
    html = await fragments_until(comm, 'data-state="cancelled"')
    assert f"Cancelled by {developer.username}" in html and "<dd data-exit-status>143</dd>" in html
    await comm.disconnect()


async def test_outsiders_and_other_deployments_are_refused_before_anything(acting, developer, make_user):
    found = await sync_to_async(acting)()
    other = await sync_to_async(acting)(name="other")
    run, _ = await sync_to_async(services.action_run_start)(
        deployment=found.deployment, action_name="Sleep", actor=developer
    )
    outsider = await sync_to_async(make_user)("outsider")
    comm, connected, code = await open_run(outsider, run)
    assert not connected and code == 4404
    comm, connected, code = await open_run(developer, run, other.deployment.pk)
    assert not connected and code == 4404
