"""Session rows: opened and closed by the gateway, asked to close by the services that take access away."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from deployments import services
from deployments.models import Role
from deployments.ssh.access import Target, authorize
from deployments.ssh.models import SSHKey, SSHSession
from deployments.ssh.services import ssh_key_add, ssh_key_remove
from deployments.ssh.sessions import (
    GONE,
    live_sessions,
    lost_sessions,
    session_close,
    session_open,
    sessions_to_close,
)
from deployments.sweeper import Sweeper
from tests.deployments.ssh.conftest import public_line

pytestmark = pytest.mark.django_db


@pytest.fixture
def enter(make_key):
    """Register a key for ``user`` and authorize it into ``deployment``'s app: the Target."""

    def enter(user, deployment) -> Target:
        line = public_line(make_key())
        ssh_key_add(user=user, name=f"key-{SSHKey.objects.count()}", public_key=line, actor=user)
        target = authorize(ssh_user=f"app.{deployment.name}.{deployment.project.slug}", public_key=line)
        assert isinstance(target, Target), target
        return target

    return enter


def test_a_session_is_a_row_from_open_to_close(make_deployment, developer, enter):
    deployment = make_deployment()
    target = enter(developer, deployment)
    session_id = session_open(target=target, pod="app-0", source_address="192.0.2.7:50022")
    row = SSHSession.objects.get(pk=session_id)
    assert SSHKey.objects.get(fingerprint=target.key_fingerprint).last_used_at == row.started_at
    assert (row.user, row.username, row.deployment, row.component, row.pod) == (
        developer,
        developer.username,
        deployment,
        "app",
        "app-0",
    )
    assert row.ssh_user == f"app.dev.{deployment.project.slug}"
    assert row.key_fingerprint == target.key_fingerprint
    assert row.source_address == "192.0.2.7:50022"
    assert row.is_open and row.close_requested_at is None
    assert list(live_sessions(deployment.pk)) == [row]

    session_close(session_id=session_id, exit_status=3, bytes_in=10, bytes_out=2000, reason="exited")
    session_close(session_id=session_id, exit_status=0, bytes_in=0, bytes_out=0, reason="again")  # no effect
    row.refresh_from_db()
    assert (row.exit_status, row.bytes_in, row.bytes_out, row.end_reason) == (3, 10, 2000, "exited")
    assert row.ended_at is not None
    assert not live_sessions(deployment.pk).exists()
    assert sessions_to_close([session_id]) == {session_id: "the session was ended"}


def test_removing_the_key_closes_its_sessions(make_deployment, developer, enter):
    deployment = make_deployment()
    target = enter(developer, deployment)
    other = enter(developer, deployment)
    kept = session_open(target=other, pod="app-0", source_address="")
    closing = session_open(target=target, pod="app-0", source_address="")
    assert sessions_to_close([kept, closing]) == {}
    ssh_key_remove(user=developer, fingerprint=target.key_fingerprint, actor=developer)
    assert sessions_to_close([kept, closing]) == {closing: "your key was removed"}


def test_removing_or_demoting_a_member_closes_their_sessions(make_deployment, developer, make_member, enter, team):
    deployment = make_deployment()
    admin = make_member(Role.ADMIN)
    colleague = make_member(Role.DEVELOPER)
    mine = session_open(target=enter(developer, deployment), pod="app-0", source_address="")
    theirs = session_open(target=enter(colleague, deployment), pod="app-0", source_address="")
    services.member_set_role(team=team, user=developer, role=Role.ADMIN, actor=admin)
    assert sessions_to_close([mine, theirs]) == {}
    services.member_set_role(team=team, user=developer, role=Role.VIEWER, actor=admin)
    assert sessions_to_close([mine, theirs]) == {mine: f"you are now a viewer in team {team.name}"}
    services.member_remove(team=team, username=colleague.username, actor=admin)
    assert sessions_to_close([theirs]) == {theirs: f"you were removed from team {team.name}"}


def test_disabling_or_deleting_the_deployment_closes_its_sessions(make_deployment, make_project, developer, enter):
    first, second = make_deployment(), make_deployment(name="other")
    in_first = session_open(target=enter(developer, first), pod="app-0", source_address="")
    in_second = session_open(target=enter(developer, second), pod="app-0", source_address="")
    services.deployment_update(deployment=first, actor=developer, enabled=False)
    assert sessions_to_close([in_first, in_second]) == {in_first: "the deployment was disabled"}
    services.deployment_delete(deployment=second, actor=developer)
    assert sessions_to_close([in_second]) == {in_second: "the deployment is being deleted"}


def test_a_session_opened_after_access_was_lost_is_born_closing(make_deployment, developer, enter):
    deployment = make_deployment()
    target = enter(developer, deployment)
    ssh_key_remove(user=developer, fingerprint=target.key_fingerprint, actor=developer)
    session_id = session_open(target=target, pod="app-0", source_address="")
    assert sessions_to_close([session_id]) == {session_id: "your key was removed"}


def test_the_poll_is_the_heartbeat_and_lost_sessions_end(make_deployment, developer, enter, settings):
    settings.SSH_SESSION_STALE_SECONDS = 30
    deployment = make_deployment()
    held = session_open(target=enter(developer, deployment), pod="app-0", source_address="")
    orphan = session_open(target=enter(developer, deployment), pod="app-0", source_address="")
    long_ago = timezone.now() - timedelta(minutes=5)
    SSHSession.objects.update(seen_at=long_ago)
    assert sessions_to_close([held]) == {}  # the gateway still holds it: seen now
    assert list(live_sessions(deployment.pk).values_list("pk", flat=True)) == [held]
    assert lost_sessions() == [orphan]
    assert Sweeper().sweep() == {"lost SSH session": [orphan]}
    assert lost_sessions() == []
    lost = SSHSession.objects.get(pk=orphan)
    assert lost.ended_at == long_ago and "stopped reporting" in lost.end_reason
    assert sessions_to_close([orphan, 999_999]) == {orphan: "the session was ended", 999_999: GONE}


def test_a_session_row_outlives_its_user(make_deployment, developer, enter):
    deployment = make_deployment()
    session_id = session_open(target=enter(developer, deployment), pod="app-0", source_address="")
    get_user_model().objects.filter(pk=developer.pk).delete()
    row = SSHSession.objects.get(pk=session_id)
    assert row.user is None and row.username == developer.username


def test_an_operator_disabling_the_deployment_in_the_admin_closes_its_sessions(make_deployment, developer, enter):
    deployment = make_deployment()
    session_id = session_open(target=enter(developer, deployment), pod="app-0", source_address="")
    deployment.enabled = False
    services.deployment_admin_save(deployment=deployment, fields=["enabled"], actor=developer)
    assert sessions_to_close([session_id]) == {session_id: "the deployment was disabled"}
