"""The world the permissions tables run in (tests/deployments/test_permissions*.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.test import Client, override_settings

from deployments import services
from deployments.actions.models import ActionRun
from deployments.builds.models import Build
from deployments.models import Deployment, Membership, Project, Role, Team
from tests.conftest import create_member, create_project, create_team, create_user, load_catalog


@dataclass
class World:
    team: Team
    project: Project
    empty_project: Project
    deployment: Deployment
    staged: Deployment | None = None  # a production deployment: it builds
    build: Build | None = None
    run: ActionRun | None = None  # a queued run of the deployment's "Redis memory usage"
    users: dict = field(default_factory=dict)


def build_world() -> World:
    """A team with a project holding one deployment, an empty project, and one user per role.

    The outsider is an *admin* of another team: being powerful elsewhere grants nothing here.
    """
    catalog = load_catalog()
    team = create_team()
    admin = create_member(team, Role.ADMIN, username="ada")
    users = {
        "anonymous": None,
        "viewer": create_member(team, Role.VIEWER, username="vic"),
        "developer": create_member(team, Role.DEVELOPER, username="dev"),
        "admin": admin,
    }
    other_team = Team.objects.create(name="Other", slug="other-team")
    outsider = create_user("olga")
    Membership.objects.create(team=other_team, user=outsider, role=Role.ADMIN)
    users["outsider"] = outsider
    create_project(catalog, other_team, "static-nginx", slug="theirs")

    project = create_project(catalog, team, "fastapi-redis", slug="shop")
    empty_project = create_project(catalog, team, "static-nginx", slug="blog")
    deployment = services.deployment_create(
        project=project, name="feature-x", stage="development", actor=admin, addons=["redis"]
    )
    # On the emulator an unreachable repository gives a simulated commit, so "Deploy latest" builds
    # (the tests keep CLUSTER_SIMULATED on while they run, too).
    with override_settings(CLUSTER_SIMULATED=True):
        staged = services.deployment_create(
            project=create_project(catalog, team, "static-nginx", slug="site"),
            name="live",
            stage="production",
            actor=admin,
        )
    return World(
        team=team,
        project=project,
        empty_project=empty_project,
        deployment=deployment,
        staged=staged,
        build=Build.objects.get(deployment=staged),
        run=ActionRun.objects.create(
            deployment=deployment, action="Redis memory usage", component="redis", command=["true"], timeout_seconds=60
        ),
        users=users,
    )


def client_for(world: World, role: str, **kwargs) -> Client:
    client = Client(**kwargs)
    if world.users[role] is not None:
        client.force_login(world.users[role])
    return client
