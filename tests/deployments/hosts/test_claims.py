"""Public hosts are unique across the installation: claims, reserved hosts, project short names (issue 15.1)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from deployments import services
from deployments.hosts.models import HostClaim
from deployments.lifecycle import delete_run
from deployments.models import Deployment, Membership, Role, Team

OLD_FORMAT = "[component]-[deployment].[base-domain]"


@pytest.fixture
def other_team(db, make_user):
    team = Team.objects.create(name="Globex", slug="globex")
    return team


def hosts_of(deployment: Deployment) -> set[str]:
    return set(HostClaim.objects.filter(deployment=deployment).values_list("host", flat=True))


def test_it_claims_the_public_hosts_of_a_new_deployment(make_project, developer, settings):
    project = make_project(slug="shop")

    deployment = services.deployment_create(project=project, name="prod", stage="production", actor=developer)

    assert hosts_of(deployment) == {f"app-prod.shop.{settings.BASE_DOMAIN}"}


def test_it_refuses_a_host_another_teams_deployment_already_has(
    make_project, pinned_host_format, developer, other_team, make_user
):
    pinned_host_format(OLD_FORMAT)
    ours = make_project(slug="shop")
    theirs = make_project(slug="store", of=other_team)
    rival = make_user()
    Membership.objects.create(team=other_team, user=rival, role=Role.DEVELOPER)
    services.deployment_create(project=ours, name="prod", stage="production", actor=developer)

    with pytest.raises(ValidationError) as refused:
        services.deployment_create(project=theirs, name="prod", stage="production", actor=rival)

    assert "app-prod.diploi.localhost, which another deployment already has" in str(refused.value.message_dict["name"])
    assert not Deployment.objects.filter(project=theirs).exists()


def test_it_refuses_a_rename_onto_a_taken_host(make_project, pinned_host_format, developer):
    pinned_host_format(OLD_FORMAT)
    first, second = make_project(slug="one"), make_project(slug="two")
    services.deployment_create(project=first, name="prod", stage="production", actor=developer)
    other = services.deployment_create(project=second, name="staging", stage="staging", actor=developer)

    with pytest.raises(ValidationError, match="another deployment already has"):
        services.deployment_update(deployment=other, actor=developer, name="prod")

    assert Deployment.objects.get(pk=other.pk).name == "staging"
    assert hosts_of(other) == {"app-staging.diploi.localhost"}


def test_it_moves_the_claim_with_a_rename(make_project, developer):
    project = make_project(slug="shop")
    deployment = services.deployment_create(project=project, name="dev1", stage="development", actor=developer)

    services.deployment_update(deployment=deployment, actor=developer, name="dev2")

    assert hosts_of(deployment) == {"app-dev2.shop.diploi.localhost"}


@pytest.mark.parametrize("name", ["edge", "ssh", "www"])
def test_it_refuses_names_that_would_take_the_platforms_own_hosts(
    make_project, pinned_host_format, developer, name, settings
):
    pinned_host_format("[deployment].[base-domain]")
    settings.EDGE_HOST, settings.SSH_HOST = "edge.diploi.localhost", "ssh.diploi.localhost"  # as scaled out
    project = make_project()

    problems = services.deployment_name_problems(project, name, stage="production")

    assert problems == [
        f"It would give the public address {name}.diploi.localhost, which is reserved for the platform itself."
    ]
    with pytest.raises(ValidationError, match="reserved for the platform"):
        services.deployment_create(project=project, name=name, stage="production", actor=developer)


def test_it_refuses_the_dashboards_own_host(make_project, pinned_host_format, developer, settings):
    settings.ALLOWED_HOSTS = ["diploi.example.com"]
    settings.BASE_DOMAIN = "example.com"
    pinned_host_format("[deployment].[base-domain]")

    problems = services.deployment_name_problems(make_project(), "diploi", stage="production")

    assert problems and "reserved for the platform" in problems[0]


def test_it_refuses_a_project_short_name_another_team_has(make_project, other_team, developer, catalog):
    make_project(slug="shop")

    with pytest.raises(ValidationError) as refused:
        services.project_create(
            team=other_team,
            name="Shop",
            slug="shop",
            template=catalog["django-postgres"],
            repository="https://github.com/globex/shop.git",
            actor=developer,
        )

    assert refused.value.message_dict["slug"] == [
        "The short name “shop” is already taken on this Diploi: pick another."
    ]


def test_it_frees_the_hosts_once_the_cluster_confirms_the_deletion(make_project, developer, emulator):
    project = make_project(slug="shop")
    deployment = services.deployment_create(project=project, name="prod", stage="production", actor=developer)
    operation = services.deployment_delete(deployment=deployment, actor=developer)
    assert hosts_of(deployment)  # the Ingress is still in the cluster

    while True:
        try:
            delete_run(operation.pk, owner="test")
            break
        except Exception as pending:  # noqa: BLE001 - StillDeleting until the emulator removed the namespace
            assert type(pending).__name__ == "StillDeleting"

    assert hosts_of(deployment) == set()
    again = services.deployment_create(project=project, name="prod", stage="production", actor=developer)
    assert hosts_of(again) == {"app-prod.shop.diploi.localhost"}


def test_the_database_refuses_a_second_claim_of_a_host(make_project, developer):
    from django.db import IntegrityError, transaction

    project = make_project(slug="shop")
    first = services.deployment_create(project=project, name="a", stage="production", actor=developer)
    second = services.deployment_create(project=project, name="b", stage="production", actor=developer)

    with pytest.raises(IntegrityError), transaction.atomic():
        HostClaim.objects.create(
            host="app-a.shop.diploi.localhost", kind="custom", deployment=second, team=project.team
        )
    assert hosts_of(first) == {"app-a.shop.diploi.localhost"}


def test_the_migration_claims_existing_hosts_and_reports_collisions(make_project, pinned_host_format, developer):
    import importlib

    from django.apps import apps

    from deployments.models import ActivityEntry

    pinned_host_format(OLD_FORMAT)
    first = services.deployment_create(
        project=make_project(slug="one"), name="prod", stage="production", actor=developer
    )
    second = services.deployment_create(
        project=make_project(slug="two"), name="qa", stage="production", actor=developer
    )
    # Before claims existed, both could hold one host: recreate that state.
    Deployment.objects.filter(pk=second.pk).update(name="prod")
    HostClaim.objects.all().delete()

    migration = importlib.import_module("deployments.hosts.migrations.0002_claim_existing_hosts")
    migration.claim_existing_hosts(apps, None)

    assert hosts_of(first) == {"app-prod.diploi.localhost"}
    assert hosts_of(second) == set()
    report = ActivityEntry.objects.get(deployment=second, action="host.collision")
    assert f"also used by deployment {first.pk}" in report.message
    assert Deployment.objects.get(pk=second.pk).name == "prod"  # reported, not silently changed
