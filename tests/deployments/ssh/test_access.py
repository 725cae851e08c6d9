"""`authorize`: which key may open which SSH user name, with every rule and refusal message."""

from __future__ import annotations

import pytest

from deployments import services
from deployments.cluster import labels
from deployments.models import Deployment, DeploymentState, Membership, Role, Team
from deployments.ssh.access import NO_KEY, Refusal, Target, authorize, key_is_registered
from deployments.ssh.models import SSHKey
from deployments.ssh.services import ssh_key_add
from tests.deployments.ssh.conftest import public_line

pytestmark = pytest.mark.django_db


@pytest.fixture
def key_of(make_key):
    """Register a fresh key for ``user``; returns its authorized_keys line."""

    def register(user) -> str:
        line = public_line(make_key())
        ssh_key_add(user=user, name=f"laptop-{SSHKey.objects.count()}", public_key=line, actor=user)
        return line

    return register


def name_of(deployment, component: str = "app") -> str:
    return f"{component}.{deployment.name}.{deployment.project.slug}"


def test_it_lets_a_developer_into_the_component(make_deployment, developer, key_of):
    deployment = make_deployment()
    line = key_of(developer)
    target = authorize(ssh_user=name_of(deployment), public_key=line)
    assert target == Target(
        user_id=developer.pk,
        username=developer.username,
        key_fingerprint=SSHKey.objects.get(user=developer).fingerprint,
        deployment_id=deployment.pk,
        component="app",
        namespace=deployment.namespace,
        pod_selector=labels.service_selector(deployment.pk, "app"),
        container="app",
        workdir=deployment.spec.component("app").code_path,
        replica=None,
    )
    assert SSHKey.objects.get(user=developer).last_used_at is None  # a decision only: used once a session opens


def test_it_lets_an_admin_in_and_passes_a_named_replica_on(make_deployment, make_member, key_of):
    deployment = make_deployment()
    admin = make_member(Role.ADMIN)
    target = authorize(ssh_user="0." + name_of(deployment), public_key=key_of(admin))
    assert isinstance(target, Target)
    assert target.replica == "0"


def test_a_build_stage_starts_in_the_images_own_directory(make_deployment, developer, key_of):
    deployment = make_deployment(stage="staging", name="stage")
    target = authorize(ssh_user=name_of(deployment), public_key=key_of(developer))
    assert isinstance(target, Target)
    assert target.workdir == ""


def test_an_unregistered_key_is_refused(make_deployment, make_key):
    deployment = make_deployment()
    assert authorize(ssh_user=name_of(deployment), public_key=public_line(make_key())) == Refusal(NO_KEY)
    assert authorize(ssh_user=name_of(deployment), public_key="not a key") == Refusal(NO_KEY)


def test_a_key_of_a_deactivated_account_is_refused(make_deployment, developer, key_of):
    deployment = make_deployment()
    line = key_of(developer)
    developer.is_active = False
    developer.save()
    assert authorize(ssh_user=name_of(deployment), public_key=line) == Refusal(NO_KEY)
    assert not key_is_registered(line)


def test_an_outsider_hears_what_a_wrong_key_hears(make_deployment, make_member, key_of):
    deployment = make_deployment()
    other_team = Team.objects.create(name="Rivals", slug="rivals")
    outsider = make_member(Role.ADMIN, of=other_team)
    line = key_of(outsider)
    existing = authorize(ssh_user=name_of(deployment), public_key=line)
    missing = authorize(ssh_user=f"app.nothing.{deployment.project.slug}", public_key=line)
    malformed = authorize(ssh_user="root", public_key=line)
    assert existing == missing == malformed == Refusal(NO_KEY)


def test_a_viewer_is_told_their_role(make_deployment, make_member, key_of, team):
    deployment = make_deployment()
    viewer = make_member(Role.VIEWER)
    assert authorize(ssh_user=name_of(deployment), public_key=key_of(viewer)) == Refusal(
        f"you are a viewer in team {team.name}"
    )


def test_the_template_decides_which_component_and_stage(make_deployment, developer, key_of):
    line = key_of(developer)
    staging = make_deployment(stage="staging", name="stage")
    production = make_deployment(stage="production", name="prod", project=staging.project)
    assert authorize(ssh_user=name_of(staging, "postgres"), public_key=line) == Refusal(
        "the staging stage of this template allows no SSH into postgres"
    )
    assert authorize(ssh_user=name_of(production), public_key=line) == Refusal(
        "the production stage of this template allows no SSH into app"
    )
    assert authorize(ssh_user=name_of(staging, "nothing"), public_key=line) == Refusal(
        "the staging stage of this template allows no SSH into nothing"
    )


def test_the_deployment_must_be_running(make_deployment, developer, key_of):
    line = key_of(developer)
    deployment = make_deployment()
    Deployment.objects.filter(pk=deployment.pk).update(enabled=False)
    assert authorize(ssh_user=name_of(deployment), public_key=line) == Refusal("the deployment is disabled")
    Deployment.objects.filter(pk=deployment.pk).update(enabled=True, applied_generation=0)
    assert authorize(ssh_user=name_of(deployment), public_key=line) == Refusal("the deployment is still being created")
    Deployment.objects.filter(pk=deployment.pk).update(applied_generation=1, state=DeploymentState.DELETING)
    assert authorize(ssh_user=name_of(deployment), public_key=line) == Refusal("the deployment is being deleted")
    Deployment.objects.filter(pk=deployment.pk).update(state=DeploymentState.DELETED)
    assert authorize(ssh_user=name_of(deployment), public_key=line) == Refusal(NO_KEY)


def test_two_projects_with_a_deployment_dev_give_two_names(make_project, make_deployment, developer, key_of):
    first = make_deployment(project=make_project(slug="shop"))
    second = make_deployment(project=make_project(slug="blog"))
    assert first.name == second.name == "dev"
    line = key_of(developer)
    assert name_of(first) != name_of(second)
    assert authorize(ssh_user=name_of(first), public_key=line).deployment_id == first.pk
    assert authorize(ssh_user=name_of(second), public_key=line).deployment_id == second.pk


def test_a_member_removed_or_demoted_loses_access(make_deployment, developer, key_of, team, make_member):
    deployment = make_deployment()
    line = key_of(developer)
    admin = make_member(Role.ADMIN)
    services.member_set_role(team=team, user=developer, role=Role.VIEWER, actor=admin)
    assert authorize(ssh_user=name_of(deployment), public_key=line) == Refusal(f"you are a viewer in team {team.name}")
    services.member_remove(team=team, username=developer.username, actor=admin)
    assert not Membership.objects.filter(user=developer).exists()
    assert authorize(ssh_user=name_of(deployment), public_key=line) == Refusal(NO_KEY)


def test_key_is_registered_reads_any_openssh_line(developer, key_of, make_key):
    line = key_of(developer)
    assert key_is_registered(line)
    assert key_is_registered(line.rsplit(" ", 1)[0])  # without its comment
    assert not key_is_registered(public_line(make_key()))
    assert not key_is_registered("garbage")
