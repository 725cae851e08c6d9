import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction

from deployments import events
from deployments.models import Deployment, DeploymentStatus, Membership, Role
from diploi_site.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_thread_connections")]


async def test_it_sends_a_member_the_project_list_on_connect(make_member, team):
    user = await database_sync_to_async(make_member)(Role.VIEWER)
    comm = WebsocketCommunicator(application, f"/ws/teams/{team.pk}/", headers=[(b"origin", b"http://localhost")])
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    message = await comm.receive_from(timeout=30)
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


# ----------------------------------------------------------------------------- a project page's live list


def _project_with_deployments(make_project, count: int):
    project = make_project("static-nginx")
    version = project.template.current_version
    Deployment.objects.bulk_create(
        Deployment(project=project, name=f"d{i:03}", stage="production", template_version=version, namespace=f"n{i}")
        for i in range(count)
    )
    return project, {d.name: d for d in Deployment.objects.filter(project=project)}


def _turn_red(deployment, reason: str) -> None:
    with transaction.atomic():
        DeploymentStatus.objects.update_or_create(deployment=deployment, defaults={"health": "red", "reason": reason})
        events.publish_deployment_changed(Deployment.objects.select_related("project").get(pk=deployment.pk))


async def _connect_to_project(user, project, page: int = 1) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(
        application, f"/ws/projects/{project.pk}/?page={page}", headers=[(b"origin", b"http://localhost")]
    )
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    first = await comm.receive_from(timeout=30)
    assert 'id="deployment-list" hx-swap-oob="true"' in first
    return comm


async def test_a_change_to_one_deployment_sends_only_its_row(make_member, make_project):
    user = await database_sync_to_async(make_member)(Role.VIEWER)
    project, deployments = await database_sync_to_async(_project_with_deployments)(make_project, 3)
    comm = await _connect_to_project(user, project)

    await database_sync_to_async(_turn_red)(deployments["d001"], "web: CrashLoopBackOff, 5 restarts")

    message = await comm.receive_from(timeout=30)
    assert message.startswith(f'<tr id="deployment-row-{deployments["d001"].pk}"')
    assert 'hx-swap-oob="true"' in message and "web: CrashLoopBackOff, 5 restarts" in message
    assert "deployment-list" not in message and "d000" not in message
    await comm.disconnect()


async def test_a_new_or_renamed_deployment_sends_the_whole_list(make_member, make_project):
    user = await database_sync_to_async(make_member)(Role.VIEWER)
    project, deployments = await database_sync_to_async(_project_with_deployments)(make_project, 2)
    comm = await _connect_to_project(user, project)

    def rename(deployment, name):
        Deployment.objects.filter(pk=deployment.pk).update(name=name)
        _turn_red(deployment, "renamed")

    await database_sync_to_async(rename)(deployments["d000"], "zz-last")

    message = await comm.receive_from(timeout=30)
    assert 'id="deployment-list" hx-swap-oob="true"' in message
    assert message.index('data-deployment="d001"') < message.index('data-deployment="zz-last"')
    await comm.disconnect()


async def test_a_change_on_another_page_sends_nothing(make_member, make_project):
    user = await database_sync_to_async(make_member)(Role.VIEWER)
    project, deployments = await database_sync_to_async(_project_with_deployments)(make_project, 101)
    comm = await _connect_to_project(user, project, page=1)

    await database_sync_to_async(_turn_red)(deployments["d100"], "on page two")
    assert await comm.receive_nothing(timeout=1)

    await database_sync_to_async(_turn_red)(deployments["d099"], "on page one")
    message = await comm.receive_from(timeout=30)
    assert message.startswith(f'<tr id="deployment-row-{deployments["d099"].pk}"') and "on page one" in message
    await comm.disconnect()


async def test_a_member_removed_from_the_team_stops_receiving_the_project(make_member, make_project, team):
    user = await database_sync_to_async(make_member)(Role.VIEWER)
    project, deployments = await database_sync_to_async(_project_with_deployments)(make_project, 1)
    comm = await _connect_to_project(user, project)

    await database_sync_to_async(Membership.objects.filter(user=user, team=team).delete)()
    await database_sync_to_async(_turn_red)(deployments["d000"], "secret reason")

    output = await comm.receive_output(timeout=5)
    assert output == {"type": "websocket.close", "code": 4410}
