"""Who gets in, through OpenSSH's `ssh`: every refusal says why on stderr and exits non-zero."""

from __future__ import annotations

import pytest

from deployments import services
from deployments.models import Role
from deployments.ssh.naming import ssh_user_for
from deployments.ssh.services import ssh_key_add
from tests.deployments.ssh.gateway.conftest import generate_key

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_registered_developer_runs_a_command(openssh, registered, running):
    target = running()
    result = openssh.ssh(target.ssh_user, "echo hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello\n"


def test_an_unregistered_key_is_told_so_and_refused(openssh, registered, running, tmp_path):
    target = running()
    stranger = openssh.with_key(generate_key(tmp_path / "other"))
    result = stranger.ssh(target.ssh_user, "true")
    assert result.returncode == 255
    assert b"diploi: no key of yours is registered" in result.stderr
    assert b"Permission denied (publickey)" in result.stderr


def test_a_non_member_hears_what_a_wrong_key_hears(openssh, running, make_user, key_path):
    target = running()
    outsider = make_user()
    ssh_key_add(user=outsider, name="k", public_key=key_path.with_suffix(".pub").read_text(), actor=outsider)
    result = openssh.ssh(target.ssh_user, "true")
    assert result.returncode != 0
    assert b"diploi: no key of yours is registered" in result.stderr
    assert target.deployment.project.team.name.encode() not in result.stderr
    # A name that leads nowhere says the same.
    nowhere = openssh.ssh("app.nothing.here", "true")
    assert nowhere.returncode != 0
    assert nowhere.stderr.splitlines()[-1] == result.stderr.splitlines()[-1]


def test_a_viewer_is_told_their_role(openssh, running, make_member, key_path, team):
    target = running()
    viewer = make_member(Role.VIEWER)
    ssh_key_add(user=viewer, name="k", public_key=key_path.with_suffix(".pub").read_text(), actor=viewer)
    result = openssh.ssh(target.ssh_user, "true")
    assert result.returncode != 0
    assert f"diploi: you are a viewer in team {team.name}".encode() in result.stderr


def test_a_component_the_stage_allows_no_ssh_into_is_refused(openssh, registered, make_project, developer):
    project = make_project("django-postgres")
    deployment = services.deployment_create(project=project, name="stage", stage="staging", actor=developer)
    user = ssh_user_for(component="postgres", deployment=deployment.name, project=project.slug)
    result = openssh.ssh(user, "true")
    assert result.returncode != 0
    assert b"diploi: the staging stage of this template allows no SSH into postgres" in result.stderr


def test_a_disabled_deployment_is_refused(openssh, registered, running, developer):
    target = running()
    services.deployment_update(deployment=target.deployment, actor=developer, enabled=False)
    result = openssh.ssh(target.ssh_user, "true")
    assert result.returncode != 0
    assert b"diploi: the deployment is disabled" in result.stderr


def test_the_host_key_is_the_one_the_profile_page_shows(openssh, registered, running, tmp_path):
    """StrictHostKeyChecking=yes with only the shown known_hosts line: a different key would fail."""
    target = running()
    assert openssh.ssh(target.ssh_user, "true").returncode == 0
    wrong = tmp_path / "wrong_known_hosts"
    other = generate_key(tmp_path / "not-the-host-key")
    wrong.write_text(f"[127.0.0.1]:{openssh.port} {other.with_suffix('.pub').read_text()}")
    result = openssh.__class__(port=openssh.port, key=openssh.key, known_hosts=wrong).ssh(target.ssh_user, "true")
    assert result.returncode == 255
    assert b"REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr
