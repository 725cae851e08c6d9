import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from deployments.models import Role
from diploi_site.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_thread_connections")]


async def test_it_sends_a_member_the_project_list_on_connect(make_member, team):
    user = await database_sync_to_async(make_member)(Role.VIEWER)
    comm = WebsocketCommunicator(application, f"/ws/teams/{team.pk}/", headers=[(b"origin", b"http://localhost")])
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    message = await comm.receive_from(timeout=5)
    assert 'id="project-list"' in message
    assert 'hx-swap-oob="true"' in message
    await comm.disconnect()


async def test_it_refuses_someone_outside_the_team(make_member, make_user, team):
    stranger = await database_sync_to_async(make_user)()
    comm = WebsocketCommunicator(application, f"/ws/teams/{team.pk}/", headers=[(b"origin", b"http://localhost")])
    comm.scope["user"] = stranger
    connected, code = await comm.connect()
    assert not connected
    assert code == 4404
