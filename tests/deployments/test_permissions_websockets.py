"""Who may open which websocket: the websocket half of test_permissions.py, in the same world.

Apart because these tests are transactional (Channels' consumers read the rows from other threads):
test_permissions.py shares one world across its tests inside a transaction these could not see.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from deployments import services
from deployments.models import Membership
from tests.deployments.permission_world import World, build_world

# ----------------------------------------------------------------------------- websockets


@pytest.fixture
def ws_world(transactional_db, settings):
    """The world of test_permissions.py, committed: the consumers read it from other threads."""
    settings.CLUSTER_SIMULATED = True
    return build_world()


def _groups(world: World) -> dict[str, str]:
    return {
        "deployment": f"/ws/deployments/{world.deployment.pk}/",
        "project": f"/ws/projects/{world.project.pk}/",
        "team": f"/ws/teams/{world.team.pk}/",
        "action": f"/ws/deployments/{world.deployment.pk}/actions/{world.run.pk}/",
    }


FRAGMENTS = {
    "deployment": 'id="deployment-header"',
    "project": 'id="deployment-list"',
    "team": 'id="project-list"',
    "action": 'id="action-run"',
}


async def _connect(path: str, user):
    from django.contrib.auth.models import AnonymousUser

    from diploi_site.asgi import application

    communicator = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://localhost")])
    communicator.scope["user"] = user if user is not None else AnonymousUser()
    connected, code = await communicator.connect()
    return communicator, connected, code


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
@pytest.mark.parametrize("group", ["deployment", "project", "team", "action"])
@pytest.mark.parametrize("role", ["anonymous", "outsider"])
async def test_it_refuses_a_websocket_to_someone_outside_the_team(ws_world, group, role):
    communicator, connected, code = await _connect(_groups(ws_world)[group], ws_world.users[role])
    assert not connected
    assert code == 4404
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
@pytest.mark.parametrize("group", ["deployment", "project", "team", "action"])
async def test_it_sends_a_member_the_fragment_at_once(ws_world, group):
    communicator, connected, _ = await _connect(_groups(ws_world)[group], ws_world.users["viewer"])
    assert connected
    message = await communicator.receive_from(timeout=30)
    assert FRAGMENTS[group] in message
    assert 'hx-swap-oob="true"' in message
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
@pytest.mark.parametrize(
    "group",
    [
        "deployment",
        "project",
        "team",
    ],
)
async def test_it_stops_sending_to_a_member_removed_from_the_team(ws_world, group):
    communicator, connected, _ = await _connect(_groups(ws_world)[group], ws_world.users["viewer"])
    assert connected
    await communicator.receive_from(timeout=30)

    await database_sync_to_async(Membership.objects.filter(user=ws_world.users["viewer"]).delete)()
    await sync_to_async(services.deployment_restart)(deployment=ws_world.deployment, actor=ws_world.users["admin"])

    output = await communicator.receive_output(timeout=5)
    assert output["type"] == "websocket.close"
    await communicator.disconnect()
