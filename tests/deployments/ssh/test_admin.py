"""Operators' admin for SSH keys, sessions and the host key."""

from __future__ import annotations

import pytest
from django.urls import reverse

from deployments.models import ActivityEntry, Membership, Role
from deployments.ssh.access import authorize
from deployments.ssh.hostkey import host_key
from deployments.ssh.models import SSHHostKey, SSHKey, SSHSession
from deployments.ssh.services import ssh_key_add
from deployments.ssh.sessions import session_open, sessions_to_close
from tests.deployments.ssh.conftest import public_line
from tests.support import post_team_memberships

pytestmark = pytest.mark.django_db


def test_an_operator_adds_a_key_for_a_user_through_the_service(admin_client, developer, make_key):
    key = make_key()
    response = admin_client.post(
        reverse("admin:ssh_sshkey_add"), {"user": developer.pk, "name": "", "public_key": public_line(key, "dev@pc")}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    added = SSHKey.objects.get(user=developer)
    assert (added.name, added.fingerprint, added.key_type) == ("dev@pc", key.get_fingerprint("sha256"), "ed25519")
    assert ActivityEntry.objects.filter(action="ssh_key.added").exists()


def test_a_refused_key_shows_on_the_admin_form(admin_client, developer, make_key):
    response = admin_client.post(
        reverse("admin:ssh_sshkey_add"),
        {"user": developer.pk, "name": "x", "public_key": public_line(make_key("ssh-rsa", key_size=1024))},
    )
    assert response.status_code == 200
    assert "at least 2048 are needed" in response.content.decode()
    assert not SSHKey.objects.exists()


def test_an_operator_removes_keys_and_their_sessions_are_asked_to_close(admin_client, developer, make_key):
    key = ssh_key_add(user=developer, name="laptop", public_key=public_line(make_key()), actor=developer)
    response = admin_client.post(
        reverse("admin:ssh_sshkey_changelist"),
        {"action": "delete_selected", "_selected_action": [key.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not SSHKey.objects.exists()
    assert ActivityEntry.objects.filter(action="ssh_key.removed").exists()


def test_every_page_renders_and_the_private_host_key_never_shows(admin_client, developer, make_key):
    ssh_key_add(user=developer, name="laptop", public_key=public_line(make_key()), actor=developer)
    private = host_key().export_private_key("openssh").decode()
    row = SSHHostKey.objects.get()
    for model, pk in (("sshkey", SSHKey.objects.get().pk), ("sshhostkey", row.pk)):
        assert admin_client.get(reverse(f"admin:ssh_{model}_changelist")).status_code == 200
        page = admin_client.get(reverse(f"admin:ssh_{model}_change", args=[pk]))
        assert page.status_code == 200
        assert private.splitlines()[1] not in page.content.decode()
    assert row.fingerprint in admin_client.get(reverse("admin:ssh_sshhostkey_changelist")).content.decode()
    assert admin_client.get(reverse("admin:ssh_sshsession_changelist") + "?open=1").status_code == 200
    assert not SSHSession.objects.exists()


def test_an_operator_closes_sessions_from_the_list(admin_client, make_deployment, developer, make_key):
    deployment = make_deployment()
    line = public_line(make_key())
    ssh_key_add(user=developer, name="laptop", public_key=line, actor=developer)
    target = authorize(ssh_user=f"app.dev.{deployment.project.slug}", public_key=line)
    session_id = session_open(target=target, pod="app-0", source_address="198.51.100.4:1234")
    page = admin_client.get(reverse("admin:ssh_sshsession_change", args=[session_id])).content.decode()
    assert "198.51.100.4:1234" in page
    response = admin_client.post(
        reverse("admin:ssh_sshsession_changelist"), {"action": "close_sessions", "_selected_action": [session_id]}
    )
    assert response.status_code == 302
    assert sessions_to_close([session_id]) == {session_id: "closed by an operator"}


@pytest.fixture
def developers_session(make_member, make_deployment, developer, make_key):
    make_member(Role.ADMIN)  # the team keeps an admin
    deployment = make_deployment()
    line = public_line(make_key())
    ssh_key_add(user=developer, name="laptop", public_key=line, actor=developer)
    target = authorize(ssh_user=f"app.dev.{deployment.project.slug}", public_key=line)
    return session_open(target=target, pod="app-0", source_address="")


def test_demoting_a_member_in_the_admin_closes_their_sessions(admin_client, team, developer, developers_session):
    assert post_team_memberships(admin_client, team, roles={developer.pk: Role.ADMIN}).status_code == 302
    assert sessions_to_close([developers_session]) == {}
    assert post_team_memberships(admin_client, team, roles={developer.pk: Role.VIEWER}).status_code == 302
    assert sessions_to_close([developers_session]) == {developers_session: f"you are now a viewer in team {team.name}"}


def test_removing_a_member_in_the_admin_closes_their_sessions(admin_client, team, developer, developers_session):
    assert post_team_memberships(admin_client, team, delete={developer.pk}).status_code == 302
    assert not Membership.objects.filter(user=developer, team=team).exists()
    assert sessions_to_close([developers_session]) == {developers_session: f"you were removed from team {team.name}"}


def test_the_session_list_costs_the_same_whatever_its_length(admin_client, make_deployment, developer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.deployments.ssh.conftest import target_for

    deployment = make_deployment()
    url = reverse("admin:ssh_sshsession_changelist")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(url).status_code == 200
        return len(captured)

    session_open(target=target_for(developer, deployment), pod="app-0", source_address="")
    one = queries()
    for _ in range(5):
        session_open(target=target_for(developer, deployment), pod="app-0", source_address="")
    assert queries() == one
