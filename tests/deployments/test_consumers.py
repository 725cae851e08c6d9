import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction

from deployments import events
from deployments.models import Deployment, DeploymentStatus, Membership, Role
from diploi_site.asgi import application
from tests.conftest import need_service

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


# ----------------------------------------------------------------------------- a deployment page's live fragments


def _tree(number: int, health: str = "red") -> dict:
    since = "2026-12-02T12:00:00+00:00"
    service = {"key": "web", "name": "Web", "health": health, "reason": f"web: change {number}", "since": since}
    return {
        "health": health,
        "reason": f"change {number}",
        "since": since,
        "nodes": {"services": {"health": health, "reason": f"change {number}", "since": since, "items": [service]}},
        "tls": {},
    }


def _store(deployment, number: int, health: str = "red") -> None:
    """A new status, published on commit as the watcher's `status_store` does."""
    with transaction.atomic():
        tree = _tree(number, health)
        DeploymentStatus.objects.update_or_create(
            deployment=deployment, defaults={"health": health, "reason": tree["reason"], "tree": tree}
        )
        events.publish_deployment_changed(Deployment.objects.select_related("project").get(pk=deployment.pk))


async def _connect_to_deployment(user, deployment, tab: str = "overview") -> WebsocketCommunicator:
    comm = WebsocketCommunicator(
        application, f"/ws/deployments/{deployment.pk}/?tab={tab}", headers=[(b"origin", b"http://localhost")]
    )
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    assert 'id="deployment-header"' in await comm.receive_from(timeout=5)
    return comm


async def _receive_change(comm: WebsocketCommunicator) -> str:
    """The frames of one change on an Overview: the header (the health) first, then the other fragments."""
    header = await comm.receive_from(timeout=5)
    assert header.startswith('<section id="deployment-header"'), header[:80]
    rest = await comm.receive_from(timeout=5)
    assert 'id="deployment-header"' not in rest
    assert 'id="status-tree"' in rest
    return header + rest


async def _rest(parts) -> str:
    """The tab's other fragments of one user's share of a batch, as the page receives them."""
    return "".join(html for _, html in await parts.fragments())


def _count(metric: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(metric, {"page": "deployment"}) or 0.0


async def test_sockets_showing_one_tab_with_one_role_share_a_render_and_roles_get_their_own(make_member, make_project):
    viewers = [await database_sync_to_async(make_member)(Role.VIEWER) for _ in range(3)]
    developers = [await database_sync_to_async(make_member)(Role.DEVELOPER) for _ in range(2)]
    _, deployments = await database_sync_to_async(_project_with_deployments)(make_project, 1)
    deployment = deployments["d000"]
    await database_sync_to_async(_store)(deployment, 0)
    # A viewer connects first, so the first render of the change may well be a viewer's.
    sockets = {user.username: await _connect_to_deployment(user, deployment) for user in [*viewers, *developers]}
    renders, sends = _count("diploi_fragment_renders_total"), _count("diploi_fragment_sends_total")

    await database_sync_to_async(_store)(deployment, 1)

    received = {name: await _receive_change(comm) for name, comm in sockets.items()}
    for user in viewers:
        assert "change 1" in received[user.username]
        assert 'aria-label="Restart web"' not in received[user.username]  # a developer's button
    for user in developers:
        assert "change 1" in received[user.username]
        assert 'aria-label="Restart web"' in received[user.username]
    assert received[viewers[0].username] == received[viewers[2].username]
    # One render per role for the five sockets, each sent its header and then the rest.
    assert _count("diploi_fragment_renders_total") - renders == 2
    assert _count("diploi_fragment_sends_total") - sends == 10
    for comm in sockets.values():
        await comm.disconnect()


async def test_a_socket_late_for_a_changes_render_takes_the_render_of_its_role_after_one_membership_read(
    make_member, make_project, make_user
):
    """Under load the change message reaches a process's sockets spread out: the ones after the
    batch started must not each render again, nor get another role's fragment."""
    import uuid

    from deployments.consumers import shared_renders

    viewer, late_viewer = [await database_sync_to_async(make_member)(Role.VIEWER) for _ in range(2)]
    late_developer = await database_sync_to_async(make_member)(Role.DEVELOPER)
    outsider = await database_sync_to_async(make_user)()
    _, deployments = await database_sync_to_async(_project_with_deployments)(make_project, 1)
    deployment = deployments["d000"]
    await database_sync_to_async(_store)(deployment, 1)
    change, renders = uuid.uuid4().hex, _count("diploi_fragment_renders_total")

    started, first = await shared_renders.render(deployment.pk, "overview", change, viewer.pk)
    first_rest = await _rest(first)
    late_started, late = await shared_renders.render(deployment.pk, "overview", change, late_viewer.pk)

    assert (late_started, late.header, await _rest(late)) == (started, first.header, first_rest)
    assert "change 1" in late.header and 'aria-label="Restart web"' not in first_rest
    assert _count("diploi_fragment_renders_total") - renders == 1
    _, developers = await shared_renders.render(deployment.pk, "overview", change, late_developer.pk)
    assert 'aria-label="Restart web"' in await _rest(developers)  # a role of its own: rendered for it
    assert _count("diploi_fragment_renders_total") - renders == 2
    _, outsiders = await shared_renders.render(deployment.pk, "overview", change, outsider.pk)
    assert outsiders.header is None and await _rest(outsiders) == ""


async def test_a_live_page_goes_on_when_its_threads_database_connection_died_between_two_checks(
    make_member, make_project
):
    """The connection is checked at most once a second: one killed just after a check fails the
    next render's first query, which is then made again on a new connection (the socket stays)."""
    import asyncio

    from django.db import connection, connections

    from deployments.consumers import on_django_thread

    if connection.vendor != "postgresql":
        need_service("killing another connection needs PostgreSQL (set DATABASE_URL; CI does)")
    viewer = await database_sync_to_async(make_member)(Role.VIEWER)
    _, deployments = await database_sync_to_async(_project_with_deployments)(make_project, 1)
    deployment = deployments["d000"]
    await database_sync_to_async(_store)(deployment, 0)
    comm = await _connect_to_deployment(viewer, deployment)  # checked its thread's connection just now

    def backend_pid() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    def on_a_connection_of_its_own(work):
        try:
            return work()
        finally:
            connections.close_all()

    def kill(pid: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])

    pid = await on_django_thread(backend_pid)()
    await asyncio.to_thread(on_a_connection_of_its_own, lambda: kill(pid))
    await asyncio.to_thread(on_a_connection_of_its_own, lambda: _store(deployment, 1))

    assert "change 1" in await _receive_change(comm)
    assert await on_django_thread(backend_pid)() != pid
    await comm.disconnect()


async def test_a_socket_demoted_to_viewer_gets_the_viewers_fragment_at_the_next_change(make_member, make_project):
    developer = await database_sync_to_async(make_member)(Role.DEVELOPER)
    other = await database_sync_to_async(make_member)(Role.DEVELOPER)
    _, deployments = await database_sync_to_async(_project_with_deployments)(make_project, 1)
    deployment = deployments["d000"]
    await database_sync_to_async(_store)(deployment, 0)
    demoted, staying = (
        await _connect_to_deployment(developer, deployment),
        await _connect_to_deployment(other, deployment),
    )
    await database_sync_to_async(Membership.objects.filter(user=developer).update)(role=Role.VIEWER)

    await database_sync_to_async(_store)(deployment, 1)

    assert 'aria-label="Restart web"' not in await _receive_change(demoted)
    assert 'aria-label="Restart web"' in await _receive_change(staying)
    await demoted.disconnect()
    await staying.disconnect()


async def test_a_page_never_shows_an_older_status_after_a_newer_one(make_member, make_project):
    """Changes committed back to back, faster than pages render: each socket may skip some, but what
    it shows only moves forward, and it ends on the last one."""
    import re

    users = [await database_sync_to_async(make_member)(role) for role in (Role.VIEWER, Role.VIEWER, Role.DEVELOPER)]
    _, deployments = await database_sync_to_async(_project_with_deployments)(make_project, 1)
    deployment = deployments["d000"]
    await database_sync_to_async(_store)(deployment, 0)
    sockets = [await _connect_to_deployment(user, deployment) for user in users]

    last = 30
    for number in range(1, last + 1):
        await database_sync_to_async(_store)(deployment, number, "red" if number % 2 else "yellow")

    def number(message: str) -> int:
        shown = int(re.search(r'<span class="reason">change (\d+)</span>', message).group(1))
        assert f"web: change {shown}" in message  # the tree after the header: the same change
        return shown

    for comm in sockets:
        shown = []
        while not shown or shown[-1] != last:
            shown.append(number(await _receive_change(comm)))
        while not await comm.receive_nothing(timeout=0.5):  # renders of earlier messages that read the last
            shown.append(number(await _receive_change(comm)))
        assert shown == sorted(shown), shown
        assert shown[-1] == last
        await comm.disconnect()


def _publish(deployment) -> None:
    """A message with nothing changed, as a reconcile that applied nothing new sends it."""
    with transaction.atomic():
        events.publish_deployment_changed(Deployment.objects.select_related("project").get(pk=deployment.pk))


async def test_a_message_that_changed_nothing_sends_nothing_and_a_change_sends_only_what_changed(
    make_member, make_project
):
    """Every fragment sent is swapped in whole: a tree sent again unchanged replaced the button the
    user was clicking (the browser test clicking Describe saw it detached)."""
    viewer = await database_sync_to_async(make_member)(Role.VIEWER)
    _, deployments = await database_sync_to_async(_project_with_deployments)(make_project, 1)
    deployment = deployments["d000"]
    await database_sync_to_async(_store)(deployment, 0)
    comm = await _connect_to_deployment(viewer, deployment, tab="status")

    await database_sync_to_async(_publish)(deployment)
    assert await comm.receive_nothing(timeout=2)

    await database_sync_to_async(_store)(deployment, 1)
    header = await comm.receive_from(timeout=5)
    assert header.startswith('<section id="deployment-header"') and "change 1" in header
    rest = await comm.receive_from(timeout=5)
    assert 'id="status-tree"' in rest and "web: change 1" in rest
    assert 'id="operations"' not in rest  # the same operations as before: not sent again
    assert await comm.receive_nothing(timeout=1)
    await comm.disconnect()


def test_the_status_tabs_live_tree_shows_healthy_nodes_open_as_the_page_does(make_member, make_project):
    """The page shows every node open; its socket's first push closed the healthy ones again, so a
    click on a node's summary closed or opened it depending on whether that push had arrived."""
    from deployments.access import live_deployment
    from deployments.consumers import render_fragments

    _, deployments = _project_with_deployments(make_project, 1)
    deployment = deployments["d000"]
    _store(deployment, 0, "green")

    fragments = dict(render_fragments(live_deployment(deployment.pk), "status", Role.VIEWER))

    assert 'data-node="services" data-health="green" open' in fragments["deployments/_status_tree.html"]
