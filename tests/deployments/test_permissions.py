"""Who may do what, for every URL and every role, through the HTTP and websocket interfaces.

The table below has one row per URL (and method). Each row says what each role
gets: anonymous visitors are sent to sign in; a user outside the team gets 404
(as if the project, deployment or team did not exist); a viewer may look but
every change is refused 403 (and so are the create form and its name check,
which only serve creating); a developer creates, restarts, edits and reveals
secrets; an admin also deletes and manages members. A refused request must
change nothing: no operation, no audit row, no task enqueued, no row touched.

`test_it_has_a_row_for_every_url` fails when a URL is added without a row here. The websockets'
rows are in test_permissions_websockets.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.db import transaction
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from deployments.models import ActivityEntry, Deployment, DeploymentState, Membership, Operation, Project, Role
from tests.deployments.permission_world import World, build_world, client_for

ROLES = ("anonymous", "outsider", "viewer", "developer", "admin")
LOGIN = reverse("login")


# ----------------------------------------------------------------------------- the world every row runs in


@pytest.fixture(scope="module")
def _world_rows(django_db_setup, django_db_blocker):
    """The world's rows, made once for the module inside a transaction that is rolled back at its end.

    Each test runs in a savepoint of that transaction (pytest-django's `db`), rolled back after it:
    what one test writes (a restart, a deleted project) never reaches the next, as with Django's
    `TestCase.setUpTestData`. Transactional tests cannot run inside it: the websocket rows, whose
    consumers read the rows from other threads, are in test_permissions_websockets.py.
    """
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
                world = build_world()
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    yield world
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


@pytest.fixture
def world(_world_rows, db, settings):
    """The module's world, in this test's savepoint; a copy, so that no test sees another's instances."""
    settings.CLUSTER_SIMULATED = True
    return copy.deepcopy(_world_rows)


def snapshot(world: World) -> dict:
    """Everything a refused request must leave alone."""
    return {
        "operations": list(Operation.objects.order_by("pk").values_list("pk", "status")),
        "activity": ActivityEntry.objects.count(),
        "memberships": sorted(Membership.objects.values_list("team_id", "user_id", "role")),
        "projects": sorted(Project.objects.values_list("pk", "team_id", "name")),
        "deployments": list(Deployment.objects.order_by("pk").values()),
    }


def team_snapshot(world: World) -> dict:
    """What belongs to the team under test (an outsider acting in their own team changes other rows)."""
    return {
        "operations": list(
            Operation.objects.filter(deployment__project__team=world.team).order_by("pk").values_list("pk", "status")
        ),
        "activity": ActivityEntry.objects.filter(team=world.team).count(),
        "memberships": sorted(Membership.objects.filter(team=world.team).values_list("user_id", "role")),
        "projects": sorted(Project.objects.filter(team=world.team).values_list("pk", "name")),
        "deployments": list(Deployment.objects.filter(project__team=world.team).order_by("pk").values()),
    }


# ----------------------------------------------------------------------------- the table


def expect(anonymous=302, outsider=404, viewer=200, developer=200, admin=200) -> dict[str, int]:
    return {"anonymous": anonymous, "outsider": outsider, "viewer": viewer, "developer": developer, "admin": admin}


PAGE = expect()  # members see it
DEVELOPER_PAGE = expect(viewer=403)  # only who may create sees the form
EDIT = expect(viewer=403, developer=302, admin=302)  # a change, then back to a page
ADMIN_ONLY = expect(viewer=403, developer=403, admin=302)
ANY_MEMBER_OR_NOT = expect(outsider=200)  # not about one team: the catalog, the user's own list
ADMIN_SECRET = expect(viewer=403, developer=403)  # an admin's change answered with the page itself


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    expected: dict[str, int]
    args: Callable[[World], list] = lambda w: []
    data: Callable[[World], dict] = lambda w: {}
    changes: bool = False  # a successful request must change something
    cluster: bool = False  # talks to the cluster (describe): runs against the emulator

    def url(self, world: World) -> str:
        return reverse(self.name, args=self.args(world))

    @property
    def id(self) -> str:
        return f"{self.name}-{self.method}"


def _fresh_public_key() -> str:
    import asyncssh

    return asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode()


def _team(w):
    return [w.team.pk]


def _project(w):
    return [w.project.pk]


def _deployment(w):
    return [w.deployment.pk]


def _run(w):
    return [w.deployment.pk, w.run.pk]


ROWS = [
    Row("healthz", "GET", expect(anonymous=200, outsider=200)),
    Row("readyz", "GET", expect(anonymous=200, outsider=200)),
    Row("home", "GET", expect(outsider=302, viewer=302, developer=302, admin=302)),
    Row(
        "switch_team",
        "POST",
        expect(outsider=302, viewer=302, developer=302, admin=302),
        data=lambda w: {"team": w.team.pk},
    ),
    Row("team_members", "GET", PAGE, args=_team),
    Row(
        "team_members",
        "POST",
        ADMIN_ONLY,
        args=_team,
        data=lambda w: {"username": "vic", "role": Role.ADMIN},
        changes=True,
    ),
    Row("projects", "GET", ANY_MEMBER_OR_NOT),
    # The project wizard creates in the user's current team: the outsider's is their own.
    Row("project_create", "GET", expect(outsider=200, viewer=403)),
    Row(
        "project_create",
        "POST",
        expect(outsider=302, viewer=403, developer=302, admin=302),
        data=lambda w: {
            "template": w.project.template_id,
            "name": "New shop",
            "slug": "new-shop",
            "repository": "https://github.com/acme/new.git",
        },
        changes=True,
    ),
    Row("project", "GET", PAGE, args=_project),
    Row("project_settings", "GET", DEVELOPER_PAGE, args=_project),
    Row(
        "project_settings",
        "POST",
        EDIT,
        args=_project,
        data=lambda w: {"name": "Renamed shop", "repository": w.project.repository},
        changes=True,
    ),
    Row("project_delete", "POST", ADMIN_ONLY, args=lambda w: [w.empty_project.pk], changes=True),
    # The Builds section of the settings page: admins manage the secrets (the answer shows a new one once).
    *(
        Row(name, "POST", ADMIN_SECRET, args=_project, data=lambda w, data=data: data, changes=True)
        for name, data in (
            ("ci_build_token", {"action": "rotate"}),
            ("ci_webhook_secret", {"action": "rotate"}),
            ("ci_deploy_key", {"action": "generate"}),
            ("ci_repository_token", {"action": "set", "token": "ghp_permissionsTable1"}),
            ("ci_build_runner", {"build_runner": "external"}),
        )
    ),
    Row("ci_workflow", "GET", DEVELOPER_PAGE, args=_project),
    Row("deployment_create", "GET", DEVELOPER_PAGE, args=_project),
    Row(
        "deployment_create",
        "POST",
        EDIT,
        args=_project,
        data=lambda w: {"name": "feature-y", "stage": "development", "branch": "main", "size": "small"},
        changes=True,
    ),
    Row("deployment_name_check", "GET", DEVELOPER_PAGE, args=_project, data=lambda w: {"name": "feature-y"}),
    Row("deployment", "GET", PAGE, args=_deployment),
    Row("deployment_status", "GET", PAGE, args=_deployment),
    Row("deployment_options", "GET", PAGE, args=_deployment),
    Row("deployment_activity", "GET", PAGE, args=_deployment),
    Row("deployment_logs", "GET", PAGE, args=_deployment),
    # Not applied to the cluster, so members learn that api has no pod (400, with the reason).
    Row(
        "deployment_logs_download",
        "GET",
        expect(viewer=400, developer=400, admin=400),
        args=_deployment,
        data=lambda w: {"component": "api"},
        cluster=True,
    ),
    Row("deployment_describe", "GET", PAGE, args=lambda w: [w.deployment.pk, "api"], cluster=True),
    Row("deployment_restart", "POST", EDIT, args=_deployment, data=lambda w: {"service": "api"}, changes=True),
    Row("deployment_deploy_latest", "POST", EDIT, args=lambda w: [w.staged.pk], changes=True),
    Row("build_log", "GET", PAGE, args=lambda w: [w.staged.pk, w.build.pk]),
    Row("build_log_download", "GET", PAGE, args=lambda w: [w.staged.pk, w.build.pk]),
    Row("deployment_retry", "POST", EDIT, args=_deployment, changes=True),
    Row(
        "action_run_request",
        "POST",
        EDIT,
        args=_deployment,
        data=lambda w: {"action": "Install requirements"},
        changes=True,
    ),
    Row("action_confirm", "GET", DEVELOPER_PAGE, args=_deployment, data=lambda w: {"action": "Install requirements"}),
    Row("action_run", "GET", PAGE, args=_run),
    Row("action_run_output", "GET", PAGE, args=_run),
    Row("action_run_cancel", "POST", EDIT, args=_run, changes=True),
    Row("deployment_rename", "POST", EDIT, args=_deployment, data=lambda w: {"name": "renamed"}, changes=True),
    Row(
        "deployment_environment",
        "POST",
        EDIT,
        args=_deployment,
        data=lambda w: {"env": "api.LOG_LEVEL=warning"},
        changes=True,
    ),
    Row(
        "deployment_reveal",
        "POST",
        expect(viewer=403),
        args=_deployment,
        data=lambda w: {"service": "api", "name": "SESSION_SECRET"},
        changes=True,  # the audit row
    ),
    Row(
        "deployment_domains",
        "POST",
        EDIT,
        args=_deployment,
        data=lambda w: {"custom_domains": "www.example.com"},
        changes=True,
    ),
    Row("deployment_addons", "POST", EDIT, args=_deployment, data=lambda w: {}, changes=True),  # removes redis
    Row("deployment_toggle", "POST", EDIT, args=_deployment, data=lambda w: {"enabled": "0"}, changes=True),
    Row(
        "deployment_delete",
        "POST",
        ADMIN_ONLY,
        args=_deployment,
        data=lambda w: {"confirm": w.deployment.name},
        changes=True,
    ),
    # Your own SSH keys: every signed-in user has a profile, whatever their teams.
    Row("profile", "GET", ANY_MEMBER_OR_NOT),
    Row(
        "profile",
        "POST",
        expect(outsider=302, viewer=302, developer=302, admin=302),
        data=lambda w: {"name": "laptop", "public_key": _fresh_public_key()},
        changes=True,  # the key and its audit row
    ),
    Row(
        "ssh_key_remove",
        "POST",
        expect(outsider=302, viewer=302, developer=302, admin=302),
        data=lambda w: {"fingerprint": "SHA256:not-a-key-of-anyone"},
    ),
    Row("catalog", "GET", ANY_MEMBER_OR_NOT),
    Row("catalog_template", "GET", ANY_MEMBER_OR_NOT, args=lambda w: ["fastapi-redis"]),
]

# Not ours to test here: Django's admin (staff only, its own permissions) and the sign-in/out views.
# The build API and the push webhook take no session at all (a bearer token, a signature): who may
# call them is tested in tests/deployments/ci (test_build_api, test_github_hook).
NOT_IN_TABLE = {
    "login",
    "logout",
    "github_push_hook",
    "api_build_started",
    "api_build",
    "api_build_progress",
    "api_build_succeeded",
    "api_build_failed",
}
NOT_IN_TABLE_NAMESPACES = {"admin"}

REFUSED = {403, 404, 405}


def _request(client: Client, method: str, url: str, data: dict):
    return client.get(url, data) if method == "GET" else client.post(url, data)


# ----------------------------------------------------------------------------- every URL, every role


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_it_gives_each_role_what_the_table_says(row, role, world, request, django_capture_on_commit_callbacks):
    if row.cluster:
        request.getfixturevalue("emulator")
    client = client_for(world, role)
    url = row.url(world)
    before, before_team = snapshot(world), team_snapshot(world)

    with django_capture_on_commit_callbacks() as callbacks:
        response = _request(client, row.method, url, row.data(world))

    expected = row.expected[role]
    assert response.status_code == expected, f"{role} {row.method} {url}: {response.status_code}"
    if role == "anonymous" and expected == 302:
        assert response["Location"].startswith(f"{LOGIN}?next="), response["Location"]
    refused = expected in REFUSED or (role == "anonymous" and expected == 302)
    if refused:
        assert snapshot(world) == before, f"{role} was refused {row.method} {url} but something changed"
        assert callbacks == [], f"{role} was refused {row.method} {url} but a task or event was enqueued"
    elif row.changes and row.method == "POST":
        if role == "outsider":
            # It acted in the outsider's own team: ours is untouched.
            assert team_snapshot(world) == before_team
            assert snapshot(world) != before
        else:
            assert snapshot(world) != before, f"{role} {row.method} {url} should have changed something"
    if role == "outsider":
        assert team_snapshot(world) == before_team


# URLs with a GET row and a POST row (a form and its submission) accept both methods.
ONE_METHOD_ROWS = [row for row in ROWS if sum(other.name == row.name for other in ROWS) == 1]


@pytest.mark.parametrize("role", ["outsider", "viewer", "developer", "admin"])
@pytest.mark.parametrize("row", ONE_METHOD_ROWS, ids=lambda row: row.id)
def test_it_refuses_the_other_method_and_reveals_nothing(row, role, world, django_capture_on_commit_callbacks):
    """A GET page refuses POST and a POST action refuses GET (405), whether or not the object exists."""
    client = client_for(world, role)
    other = "POST" if row.method == "GET" else "GET"
    before = snapshot(world)
    with django_capture_on_commit_callbacks() as callbacks:
        response = _request(client, other, row.url(world), row.data(world) if other == "POST" else {})
    assert response.status_code == 405, f"{role} {other} {row.url(world)}: {response.status_code}"
    assert snapshot(world) == before
    assert callbacks == []
    # The same answer for an id that does not exist: the status code tells an outsider nothing.
    args = row.args(world)
    if args and isinstance(args[0], int):
        missing = reverse(row.name, args=[999_999, *args[1:]])
        assert _request(client, other, missing, {}).status_code == 405


def test_it_has_a_row_for_every_url():
    """A URL added later without a row in the table (or an exemption above) fails here."""

    def names(patterns, namespace=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                if pattern.namespace in NOT_IN_TABLE_NAMESPACES:
                    continue
                yield from names(pattern.url_patterns, inner)
            elif isinstance(pattern, URLPattern):
                assert pattern.name, f"the URL {pattern.pattern} has no name: name it and add it to the table"
                yield f"{namespace}{pattern.name}"

    urls = set(names(get_resolver().url_patterns))
    covered = {row.name for row in ROWS}
    assert urls - covered - NOT_IN_TABLE == set(), "URLs without a row in the permissions table"
    assert covered - urls == set(), "rows for URLs that no longer exist"


def test_it_hides_every_deployment_url_of_a_deleted_deployment_even_from_its_admin(world):
    Deployment.objects.filter(pk=world.deployment.pk).update(state=DeploymentState.DELETED)
    client = client_for(world, "admin")
    for row in ROWS:
        if row.args is _deployment or row.name == "deployment_describe":
            response = _request(client, row.method, row.url(world), row.data(world))
            assert response.status_code == 404, f"{row.method} {row.url(world)}: {response.status_code}"


def test_it_does_not_list_another_teams_projects(world):
    page = client_for(world, "outsider").get(reverse("projects")).content.decode()
    assert "Theirs" in page
    assert "Shop" not in page and "Blog" not in page


def test_it_never_redirects_a_restart_off_site(world):
    client = client_for(world, "developer")
    response = client.post(reverse("deployment_restart", args=_deployment(world)), {"next": "https://evil.example/"})
    assert response.status_code == 302
    assert response["Location"] == reverse("deployment", args=_deployment(world))


# ----------------------------------------------------------------------------- CSRF

CSRF_ROWS = [row for row in ROWS if row.method == "POST" and row.name != "switch_team"]


@pytest.mark.parametrize("row", CSRF_ROWS, ids=lambda row: row.id)
def test_it_refuses_a_post_without_the_csrf_token(row, world, django_capture_on_commit_callbacks):
    client = client_for(world, "admin", enforce_csrf_checks=True)
    before = snapshot(world)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(row.url(world), row.data(world))
    assert response.status_code == 403
    assert b"CSRF" in response.content
    assert snapshot(world) == before
    assert callbacks == []


def test_it_accepts_the_same_post_with_the_token(world):
    client = client_for(world, "admin", enforce_csrf_checks=True)
    client.get(reverse("deployment_options", args=_deployment(world)))
    token = client.cookies["csrftoken"].value
    response = client.post(reverse("deployment_restart", args=_deployment(world)), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert world.deployment.operations.filter(kind=Operation.Kind.RESTART).exists()
