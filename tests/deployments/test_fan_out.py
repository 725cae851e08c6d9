"""Big teams stay cheap (issue 15, item 12): paginated lists, per-card updates on the projects
page's websocket, and a cap on live sockets per user."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction

from deployments import events, selectors
from deployments.models import Deployment, DeploymentStatus, Project, Role
from diploi_site.asgi import application

ORIGIN = [(b"origin", b"http://localhost")]


def many_projects(team, catalog, count: int) -> list[Project]:
    template = catalog["static-nginx"]
    Project.objects.bulk_create(
        Project(team=team, name=f"P{i:04}", slug=f"fan{i:04}", template=template) for i in range(count)
    )
    return list(Project.objects.filter(team=team).order_by("name"))


def test_the_projects_page_is_paginated(client, developer, team, catalog, monkeypatch):
    monkeypatch.setattr(selectors, "PROJECTS_PER_PAGE", 10)
    many_projects(team, catalog, 25)
    client.force_login(developer)

    first = client.get("/projects/").content.decode()
    last = client.get("/projects/?page=3").content.decode()

    assert first.count('class="card project-card"') == 10 and "Page 1 of 3 · 25 projects" in first
    assert last.count('class="card project-card"') == 5 and "P0024" in last and "P0000" not in last


def test_the_members_page_is_paginated(client, make_member, team, monkeypatch):
    monkeypatch.setattr(selectors, "MEMBERS_PER_PAGE", 3)
    viewer = make_member(Role.VIEWER, username="aaa-viewer")
    for number in range(6):
        make_member(Role.VIEWER, username=f"member{number}")
    client.force_login(viewer)

    page = client.get(f"/teams/{team.pk}/members/?page=2").content.decode()

    assert "Page 2 of 3 · 7 members" in page
    assert "<td>member2</td>" in page and "<td>aaa-viewer</td>" not in page


def _turn_red(project) -> None:
    deployment = Deployment.objects.create(
        project=project,
        name="web",
        stage="production",
        template_version=project.template.current_version,
        namespace=f"ns-{project.slug}",
    )
    with transaction.atomic():
        DeploymentStatus.objects.create(deployment=deployment, health="red", reason="crash")
        events.publish_deployment_changed(Deployment.objects.select_related("project").get(pk=deployment.pk))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_a_change_in_one_project_sends_only_its_card(make_member, team, catalog):
    user = await database_sync_to_async(make_member)(Role.VIEWER)
    projects = await database_sync_to_async(many_projects)(team, catalog, 30)
    comm = WebsocketCommunicator(application, f"/ws/teams/{team.pk}/", headers=ORIGIN)
    comm.scope["user"] = user
    assert (await comm.connect())[0]
    assert 'id="project-list"' in await comm.receive_from(timeout=30)

    await database_sync_to_async(_turn_red)(projects[7])

    message = await comm.receive_from(timeout=30)
    assert message.startswith(f'<li class="card project-card" id="project-card-{projects[7].pk}" hx-swap-oob="true"')
    assert "1 failing" in message
    assert "project-list" not in message and "P0008" not in message
    assert len(message) < 1000
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_a_user_beyond_the_socket_cap_is_refused_with_a_reason(make_member, team, settings):
    settings.WEBSOCKETS_PER_USER = 2
    user = await database_sync_to_async(make_member)(Role.VIEWER)

    async def open_one():
        comm = WebsocketCommunicator(application, f"/ws/teams/{team.pk}/", headers=ORIGIN)
        comm.scope["user"] = user
        assert (await comm.connect())[0]
        return comm

    first, second = await open_one(), await open_one()
    await first.receive_from(timeout=30)
    await second.receive_from(timeout=30)
    third = await open_one()
    assert await third.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": 4429,
        "reason": "Too many live pages: at most 2 per user. Close other tabs and reload.",
    }

    await first.disconnect()
    fourth = await open_one()
    assert 'id="project-list"' in await fourth.receive_from(timeout=30)
    other = await database_sync_to_async(make_member)(Role.VIEWER)  # the cap is per user
    comm = WebsocketCommunicator(application, f"/ws/teams/{team.pk}/", headers=ORIGIN)
    comm.scope["user"] = other
    assert (await comm.connect())[0]
    assert 'id="project-list"' in await comm.receive_from(timeout=30)
    for open_comm in (second, fourth, comm):
        await open_comm.disconnect()
