"""The Overview's live SSH session count follows sessions opening and closing, over the websocket."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from deployments.ssh.sessions import session_close, session_open
from diploi_site.asgi import application
from tests.deployments.ssh.conftest import target_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_thread_connections")]


async def next_count(comm: WebsocketCommunicator) -> str:
    message = await comm.receive_from(timeout=10)
    if 'id="ssh-sessions"' not in message:  # a change's header, sent first: the count comes after it
        message = await comm.receive_from(timeout=10)
    start = message.index('<p id="ssh-sessions"')
    return message[start : message.index("</p>", start)]


async def test_the_overview_count_is_live(make_deployment, developer):
    deployment = await database_sync_to_async(make_deployment)()
    comm = WebsocketCommunicator(
        application, f"/ws/deployments/{deployment.pk}/?tab=overview", headers=[(b"origin", b"http://localhost")]
    )
    comm.scope["user"] = developer
    connected, _ = await comm.connect()
    assert connected
    assert "0 open SSH sessions" in await next_count(comm)

    target = target_for(developer, deployment)
    session_id = await database_sync_to_async(session_open)(target=target, pod="app-0", source_address="")
    assert "1 open SSH session ·" in await next_count(comm)
    await database_sync_to_async(session_close)(session_id=session_id, exit_status=0, bytes_in=0, bytes_out=0)
    assert "0 open SSH sessions" in await next_count(comm)
    await comm.disconnect()
