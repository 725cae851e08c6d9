"""The operators' admin for teams, projects, deployments and what is recorded about them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from deployments import dispatch, services
from deployments.cluster.connection import get_cluster
from deployments.models import (
    ActivityEntry,
    CpuSample,
    Deployment,
    DeploymentState,
    DeploymentStatus,
    Health,
    Lease,
    Membership,
    Operation,
    Role,
    Team,
)
from deployments.tasks import reconcile_deployment
from templates_catalog.models import TemplateVersion
from tests.support import built, observed_until_done, post_team_memberships, wait_for

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:deployments_deployment_changelist"


def change_url(deployment):
    return reverse("admin:deployments_deployment_change", args=[deployment.pk])


def results(response):
    return sorted(d.name for d in response.context["cl"].result_list)


def reconciles(callbacks, deployment) -> int:
    """How many reconciles of ``deployment`` the transaction enqueued on commit."""
    wanted = (reconcile_deployment, deployment.pk)
    return sum(1 for cb in callbacks if getattr(cb, "func", None) is dispatch.send and cb.args == wanted)


def page_messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def create(make_project, developer):
    def make(name: str, *, template: str = "fastapi-redis", project=None, stage: str = "development", **extra):
        return services.deployment_create(
            project=project or make_project(template), name=name, stage=stage, actor=developer, **extra
        )

    return make


@pytest.fixture
def deployment(create):
    """A development deployment with a status tree from the cluster, an operation and activity."""
    deployment = create("feature-x", addons=["redis"])
    now = timezone.now()
    DeploymentStatus.objects.create(
        deployment=deployment,
        health=Health.YELLOW,
        reason="api is starting",
        since=now - timedelta(minutes=3),
        observed_at=now,
        tree={
            "health": "yellow",
            "reason": "api is starting",
            "since": (now - timedelta(minutes=3)).isoformat(),
            "nodes": {
                "storage": {
                    "health": "green",
                    "reason": "2 volumes bound",
                    "since": now.isoformat(),
                    "items": [
                        {"key": "code-api-0", "health": "green", "reason": "Bound", "size": "1Gi", "service": "api"},
                        {
                            "key": "data-redis-0",
                            "health": "green",
                            "reason": "Bound",
                            "size": "512Mi",
                            "service": "redis",
                        },
                    ],
                },  # fmt: skip
                "builds": {
                    "health": "green",
                    "reason": "No builds: development runs the code cloned from Git",
                    "items": [],
                },
                "containers": {"health": "yellow", "reason": "api: readiness probe failing", "items": []},
                "services": {"health": "red", "reason": "api has no ready endpoint", "items": []},
            },
        },
    )
    return deployment


@pytest.fixture
def secret_values(deployment):
    values = list(deployment.generated_secrets.values())
    assert values and all(len(v) >= 16 for v in values)
    return values


# ----------------------------------------------------------------------------- rendering


def test_it_renders_every_changelist_and_change_page(admin_client, deployment, team):
    CpuSample.objects.create(
        deployment=deployment, tier="raw", bucket_start=timezone.now(), total_millicores=40, count=2
    )
    Lease.acquire("cpu-sampler", "watcher-1", 30)
    Membership.objects.create(team=team, user=admin_client_user(admin_client), role=Role.ADMIN)
    records = {
        "team": team,
        "project": deployment.project,
        "deployment": deployment,
        "operation": deployment.operations.get(),
        "activityentry": ActivityEntry.objects.filter(deployment=deployment).first(),
        "deploymentstatus": deployment.status,
        "cpusample": CpuSample.objects.get(),
        "lease": Lease.objects.get(),
    }

    for model, obj in records.items():
        listing = admin_client.get(reverse(f"admin:deployments_{model}_changelist"))
        detail = admin_client.get(reverse(f"admin:deployments_{model}_change", args=[obj.pk]))
        assert listing.status_code == 200, model
        assert detail.status_code == 200, model


def admin_client_user(client):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(pk=client.session["_auth_user_id"])


def test_it_lists_deployments_with_health_as_colour_and_word(admin_client, deployment):
    response = admin_client.get(reverse(CHANGELIST))

    page = response.content.decode()
    assert results(response) == ["feature-x"]
    assert "Degraded" in page and "#b7791f" in page  # health: word and colour
    assert deployment.project.team.name in page and "Development" in page and "Creating" in page
    assert f'{deployment.template_version.version} <span class="quiet">(current)</span>' in page
    assert "0 / 1 (behind)" in page  # applied / desired generation


def test_it_shows_the_status_tree_operations_and_secret_names_on_the_change_page(admin_client, deployment):
    response = admin_client.get(change_url(deployment))

    page = response.content.decode()
    assert "api is starting" in page  # health, reason
    # The stored tree, as the watcher wrote it (its Builds node included: development builds nothing).
    for reason in (
        "2 volumes bound",
        "No builds: development runs the code cloned from Git",
        "api: readiness probe failing",
        "api has no ready endpoint",
    ):
        assert reason in page
    assert "Failing" in page and "#c53030" in page  # the services node, colour and word
    assert "Create" in page and "Pending" in page  # the recent operation
    for name in deployment.generated_secrets:
        assert name in page
    assert 'name="custom_domains"' in page and 'name="branch"' in page
    assert 'name="namespace"' not in page and 'name="desired_generation"' not in page
    assert 'name="state"' not in page and 'name="lease_owner"' not in page


def test_it_never_shows_generated_secret_values(admin_client, deployment, secret_values):
    changelist = reverse(CHANGELIST)
    pages = [
        admin_client.get(changelist),
        admin_client.get(change_url(deployment)),
        admin_client.get(reverse("admin:deployments_deployment_history", args=[deployment.pk])),
        admin_client.post(changelist, {"action": "delete_permanently", "_selected_action": [deployment.pk]}),
        admin_client.get(reverse("admin:deployments_project_change", args=[deployment.project.pk])),
        admin_client.get(reverse("admin:deployments_deploymentstatus_change", args=[deployment.status.pk])),
        admin_client.get(reverse("admin:deployments_operation_changelist")),
        admin_client.get(reverse("admin:deployments_activityentry_changelist")),
    ]
    entry = ActivityEntry.objects.filter(deployment=deployment).first()
    pages.append(admin_client.get(reverse("admin:deployments_activityentry_change", args=[entry.pk])))

    for response in pages:
        assert response.status_code == 200
        page = response.content.decode()
        assert not [value for value in secret_values if value in page], response.wsgi_request.path


def test_it_lists_without_a_query_per_row(admin_client, create, make_project):
    project = make_project("fastapi-redis")
    create("one", project=project)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(reverse(CHANGELIST)).status_code == 200
        return len(queries)

    few = count()
    for name in ("two", "three", "four", "five"):
        DeploymentStatus.objects.create(deployment=create(name, project=project), health=Health.GREEN)
    assert count() == few


# ----------------------------------------------------------------------------- filters and search


def test_it_hides_tombstones_unless_asked_for(admin_client, create, make_project):
    project = make_project("fastapi-redis")
    create("alive", project=project)
    gone = create("gone", project=project)
    Deployment.objects.filter(pk=gone.pk).update(state=DeploymentState.DELETED, deleted_at=timezone.now())

    assert results(admin_client.get(reverse(CHANGELIST))) == ["alive"]
    deleted = admin_client.get(reverse(CHANGELIST), {"lifecycle": "deleted"})
    assert results(deleted) == ["gone"]
    assert "Deleted (tombstone)" in deleted.content.decode()
    assert results(admin_client.get(reverse(CHANGELIST), {"lifecycle": "all"})) == ["alive", "gone"]
    assert results(admin_client.get(reverse(CHANGELIST), {"lifecycle": "all", "_facets": "1"})) == ["alive", "gone"]


def test_it_filters_by_stage_health_state_team_and_template_version(
    admin_client, create, make_project, make_member, catalog
):
    other_team = Team.objects.create(name="Other", slug="other")
    project = make_project("fastapi-redis")
    dev = create("dev", project=project)
    prod = create("prod", project=project, stage="production")
    theirs = create("theirs", project=make_project("fastapi-redis", of=other_team))
    DeploymentStatus.objects.create(deployment=dev, health=Health.RED, reason="crashing")
    DeploymentStatus.objects.create(deployment=prod, health=Health.GREEN)
    Deployment.objects.filter(pk=prod.pk).update(state=DeploymentState.RUNNING)
    # A new version of the template: the three existing deployments now run an old one.
    template = catalog["fastapi-redis"]
    old = template.current_version
    template.current_version = TemplateVersion.objects.create(
        template=template, version="9.9.9", digest="f" * 64, spec_data=old.spec_data, source=old.source
    )
    template.save()
    Deployment.objects.filter(pk=theirs.pk).update(template_version=template.current_version)

    def filtered(**params):
        return results(admin_client.get(reverse(CHANGELIST), params))

    assert filtered(stage__exact="production") == ["prod"]
    assert filtered(status__health__exact="red") == ["dev"]
    assert filtered(state__exact="running") == ["prod"]
    assert filtered(project__team__id__exact=str(other_team.pk)) == ["theirs"]
    assert filtered(template_version="old") == ["dev", "prod"]
    assert "1.1.0 <strong" in admin_client.get(reverse(CHANGELIST), {"template_version": "old"}).content.decode()
    assert filtered(template_version="current") == ["theirs"]


def test_it_searches_by_name_namespace_and_project(admin_client, create, make_project):
    shop = make_project("fastapi-redis", slug="shop")
    blog = make_project("fastapi-redis", slug="blog")
    first = create("first", project=shop)
    create("second", project=blog)

    assert results(admin_client.get(reverse(CHANGELIST), {"q": "second"})) == ["second"]
    assert results(admin_client.get(reverse(CHANGELIST), {"q": first.namespace})) == ["first"]
    assert results(admin_client.get(reverse(CHANGELIST), {"q": "Blog"})) == ["second"]


# ----------------------------------------------------------------------------- editing


def form_data(deployment, **changes):
    data = {
        "name": deployment.name,
        "branch": deployment.branch,
        "size": deployment.size,
        "enabled": "on" if deployment.enabled else "",
        "enabled_addons": list(deployment.enabled_addons),
        "env_overrides": "\n".join(
            f"{service}.{name}={value}"
            for service, values in deployment.env_overrides.items()
            for name, value in values.items()
        ),
        "custom_domains": "\n".join(deployment.custom_domains),
        "image_overrides": "{}",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


def test_it_saves_a_desired_state_edit_through_the_model_and_audits_it(
    admin_client, deployment, django_capture_on_commit_callbacks
):
    before = deployment.desired_generation

    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(change_url(deployment), form_data(deployment, custom_domains="Shop.Example.com"))

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    deployment.refresh_from_db()
    assert deployment.custom_domains == ["shop.example.com"]
    assert deployment.desired_generation == before + 1
    assert reconciles(callbacks, deployment) == 1
    entry = ActivityEntry.objects.get(action="deployment.admin_edited")
    assert entry.deployment == deployment and entry.actor.username == "admin"
    assert entry.data == {"fields": ["custom_domains"]}
    operation = deployment.operations.get(kind=Operation.Kind.RECONCILE)
    assert operation.generation == deployment.desired_generation and operation.requested_by.username == "admin"


@pytest.mark.django_db(transaction=True)
def test_it_makes_the_cluster_follow_an_admin_edit(worker, admin_client, create):
    deployment = built(create("feature-x", stage="production"))

    def applied() -> bool:
        current = Deployment.objects.get(pk=deployment.pk)
        return current.applied_generation >= current.desired_generation > 0

    wait_for(applied, timeout=30, what="the worker to create it")
    response = admin_client.post(change_url(deployment), form_data(deployment, custom_domains="shop.example.com"))
    assert response.status_code == 302

    wait_for(applied, timeout=30, what="the worker to apply the edit")
    ingress = get_cluster().get("Ingress", "public", deployment.namespace)
    assert "shop.example.com" in [rule["host"] for rule in ingress["spec"]["rules"]]
    operation = observed_until_done(deployment.operations.filter(kind=Operation.Kind.RECONCILE).latest("pk"))
    assert operation.status == Operation.Status.SUCCEEDED


def test_it_does_not_touch_what_the_worker_writes(admin_client, deployment):
    url = change_url(deployment)
    admin_client.get(url)
    # The worker applies and takes the lease while the operator edits.
    Deployment.objects.filter(pk=deployment.pk).update(
        applied_generation=1, state=DeploymentState.RUNNING, lease_owner="task-9"
    )

    response = admin_client.post(url, form_data(deployment, size="medium", enabled_addons=[]))

    assert response.status_code == 302
    deployment.refresh_from_db()
    assert (deployment.size, deployment.enabled_addons) == ("medium", [])
    assert (deployment.applied_generation, deployment.desired_generation) == (1, 2)
    assert (deployment.state, deployment.lease_owner) == (DeploymentState.RUNNING, "task-9")


def test_it_saves_nothing_when_nothing_changed(admin_client, deployment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(change_url(deployment), form_data(deployment))

    assert response.status_code == 302
    assert Deployment.objects.get(pk=deployment.pk).desired_generation == deployment.desired_generation
    assert reconciles(callbacks, deployment) == 0
    assert not ActivityEntry.objects.filter(action="deployment.admin_edited").exists()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"custom_domains": "www.diploi.localhost"}, "custom_domains", None),
        ({"env_overrides": "api.1BAD=x"}, "env_overrides", None),
        ({"env_overrides": "nope.DEBUG=1"}, "env_overrides", "There is no component or add-on “nope”."),
        ({"enabled_addons": ["postgres"]}, "enabled_addons", "“postgres” is not an optional add-on of this template."),
        ({"name": "Bad Name"}, "name", None),
        ({"branch": "-x"}, "branch", "Give a branch name (no spaces, not starting with “-”)."),
        ({"image_overrides": '{"nope": "nginx"}'}, "image_overrides", "There is no component “nope”."),
    ],
)
def test_it_rejects_invalid_input_with_the_services_messages(admin_client, deployment, changes, field, message):
    expected = {
        "custom_domains": lambda: services.custom_domain_problems(
            ["www.diploi.localhost"], team=deployment.project.team
        )[1][0],
        "env_overrides": lambda: services.env_override_problems(deployment.spec, {"api": {"1BAD": "x"}})[0],
        "name": lambda: services.deployment_name_problems(deployment.project, "Bad Name")[0],
    }
    message = message or expected[field]()

    response = admin_client.post(change_url(deployment), form_data(deployment, **changes))

    assert response.status_code == 200
    assert message in response.context["adminform"].form.errors[field]
    assert message in response.content.decode()
    assert Deployment.objects.get(pk=deployment.pk).desired_generation == deployment.desired_generation
    assert not ActivityEntry.objects.filter(action="deployment.admin_edited").exists()


def test_it_rejects_a_custom_domain_another_deployment_uses(admin_client, deployment, create):
    other = create("other", project=deployment.project)
    services.deployment_update(deployment=other, actor=None, custom_domains=["shop.example.com"])

    response = admin_client.post(change_url(deployment), form_data(deployment, custom_domains="shop.example.com"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["custom_domains"] == [
        "“shop.example.com” is already used by another deployment."
    ]


def test_it_rejects_a_name_another_deployment_has(admin_client, deployment, create):
    create("taken", project=deployment.project)

    response = admin_client.post(change_url(deployment), form_data(deployment, name="taken"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"] == ["The project already has a deployment called “taken”."]


def test_it_shows_deleted_deployments_read_only(admin_client, deployment):
    Deployment.objects.filter(pk=deployment.pk).update(state=DeploymentState.DELETED, deleted_at=timezone.now())

    page = admin_client.get(change_url(deployment))
    refused = admin_client.post(change_url(deployment), form_data(deployment, size="large"))

    assert page.status_code == 200
    assert "a tombstone kept for the activity log" in page.content.decode()
    assert 'name="branch"' not in page.content.decode()
    assert refused.status_code == 403
    assert Deployment.objects.get(pk=deployment.pk).size == "small"


# ----------------------------------------------------------------------------- actions


def test_it_reconciles_through_the_service(admin_client, deployment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            reverse(CHANGELIST), {"action": "reconcile_now", "_selected_action": [deployment.pk]}, follow=True
        )

    assert f"Reconcile requested for {deployment}." in page_messages(response)
    operation = deployment.operations.get(kind=Operation.Kind.RECONCILE)
    assert operation.requested_by.username == "admin" and operation.status == Operation.Status.PENDING
    assert ActivityEntry.objects.filter(action="deployment.reconcile_requested", deployment=deployment).exists()
    assert reconciles(callbacks, deployment) == 1


def test_it_restarts_through_the_service(admin_client, deployment):
    response = admin_client.post(
        reverse(CHANGELIST), {"action": "restart", "_selected_action": [deployment.pk]}, follow=True
    )

    assert f"Restarting {deployment}." in page_messages(response)
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.RESTARTING and "*" in deployment.restart_marks
    assert deployment.operations.filter(kind=Operation.Kind.RESTART, requested_by__username="admin").exists()
    assert ActivityEntry.objects.filter(action="deployment.restarted", deployment=deployment).exists()


def test_it_reports_what_a_service_refused(admin_client, deployment, create):
    other = create("other", project=deployment.project)
    Deployment.objects.filter(pk=deployment.pk).update(state=DeploymentState.DELETING)

    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "restart", "_selected_action": [deployment.pk, other.pk], "lifecycle": "all"},
        follow=True,
    )

    shown = page_messages(response)
    assert f"{deployment}: This deployment is being deleted." in shown
    assert f"Restarting {other}." in shown
    assert not deployment.operations.filter(kind=Operation.Kind.RESTART).exists()


def test_it_deletes_after_confirming_what_will_be_destroyed(admin_client, deployment):
    changelist = reverse(CHANGELIST)

    confirmation = admin_client.post(changelist, {"action": "delete_permanently", "_selected_action": [deployment.pk]})

    assert confirmation.status_code == 200
    page = confirmation.content.decode()
    assert deployment.namespace in page
    assert "code-api-0" in page and "512Mi" in page  # the volumes the cluster reported
    assert Deployment.objects.get(pk=deployment.pk).state == DeploymentState.CREATING  # nothing yet

    response = admin_client.post(
        changelist, {"action": "delete_permanently", "_selected_action": [deployment.pk], "post": "yes"}, follow=True
    )

    assert f"Deleting, with all their storage: {deployment}." in page_messages(response)
    assert Deployment.objects.get(pk=deployment.pk).state == DeploymentState.DELETING
    assert deployment.operations.filter(kind=Operation.Kind.DELETE, requested_by__username="admin").exists()
    assert ActivityEntry.objects.filter(action="deployment.delete_requested", deployment=deployment).exists()


def test_it_lists_the_template_volumes_before_the_cluster_reported(admin_client, create):
    deployment = create("fresh", template="django-postgres")

    response = admin_client.post(
        reverse(CHANGELIST), {"action": "delete_permanently", "_selected_action": [deployment.pk]}
    )

    page = response.content.decode()
    assert deployment.namespace in page and "5Gi" in page  # PostgreSQL's declared volume


def test_it_offers_no_row_delete_or_add_for_deployments(admin_client, deployment):
    assert admin_client.get(reverse("admin:deployments_deployment_add")).status_code == 403
    delete = reverse("admin:deployments_deployment_delete", args=[deployment.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    actions = admin_client.get(reverse(CHANGELIST)).context["action_form"].fields["action"].choices
    assert [name for name, _ in actions if name] == ["reconcile_now", "build_now", "restart", "delete_permanently"]


# ----------------------------------------------------------------------------- operations and activity


def test_it_lists_and_filters_operations_read_only(admin_client, deployment):
    services.deployment_restart(deployment=deployment, actor=None)
    url = reverse("admin:deployments_operation_changelist")

    restarts = admin_client.get(url, {"kind__exact": "restart"})
    pending = admin_client.get(url, {"status__exact": "pending"})

    assert [o.kind for o in restarts.context["cl"].result_list] == ["restart"]
    assert len(pending.context["cl"].result_list) == 2
    # The change page of a deployment links to its operations and activity.
    for name in ("operation", "activityentry"):
        of_deployment = admin_client.get(
            reverse(f"admin:deployments_{name}_changelist"), {"deployment__id__exact": deployment.pk}
        )
        assert of_deployment.status_code == 200 and of_deployment.context["cl"].result_list
    operation = deployment.operations.first()
    assert admin_client.get(reverse("admin:deployments_operation_add")).status_code == 403
    delete = reverse("admin:deployments_operation_delete", args=[operation.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    change = reverse("admin:deployments_operation_change", args=[operation.pk])
    assert admin_client.post(change, {"status": "failed"}).status_code == 403
    assert Operation.objects.get(pk=operation.pk).status == Operation.Status.PENDING
    assert restarts.context["action_form"] is None  # no actions, not even "delete selected"


def test_it_searches_the_activity_log_read_only(admin_client, deployment):
    services.deployment_restart(deployment=deployment, actor=None)
    url = reverse("admin:deployments_activityentry_changelist")

    response = admin_client.get(url, {"q": "Restart of"})

    assert [e.action for e in response.context["cl"].result_list] == ["deployment.restarted"]
    assert response.context["cl"].date_hierarchy == "created_at"
    entry = ActivityEntry.objects.first()
    assert admin_client.get(reverse("admin:deployments_activityentry_add")).status_code == 403
    delete = reverse("admin:deployments_activityentry_delete", args=[entry.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert ActivityEntry.objects.filter(pk=entry.pk).exists()


# ----------------------------------------------------------------------------- teams and projects


def test_it_shows_a_project_with_its_deployments(admin_client, deployment, create):
    gone = create("gone", project=deployment.project)
    Deployment.objects.filter(pk=gone.pk).update(state=DeploymentState.DELETED)

    response = admin_client.get(reverse("admin:deployments_project_change", args=[deployment.project.pk]))

    page = response.content.decode()
    assert "feature-x" in page and "Degraded" in page
    assert "gone" in page and "Deleted (tombstone)" in page
    assert 'name="repository"' in page and 'name="slug"' not in page and 'name="template"' not in page


def test_it_edits_a_project_with_the_dashboards_repository_rule(admin_client, make_project):
    project = make_project("fastapi-redis")
    url = reverse("admin:deployments_project_change", args=[project.pk])

    ssh = admin_client.post(url, {"name": "Shop", "repository": "git@github.com:acme/shop.git"})
    bad = admin_client.post(url, {"name": "Shop", "repository": "shop"})

    assert ssh.status_code == 302
    project.refresh_from_db()
    assert (project.name, project.repository) == ("Shop", "git@github.com:acme/shop.git")
    assert bad.status_code == 200 and "repository" in bad.context["adminform"].form.errors


def test_it_edits_memberships_and_keeps_an_admin(admin_client, team, make_member):
    owner = make_member(Role.ADMIN)
    helper = make_member(Role.DEVELOPER)
    url = reverse("admin:deployments_team_change", args=[team.pk])

    def post(roles: dict):
        return post_team_memberships(admin_client, team, roles={user.pk: role for user, role in roles.items()})

    page = admin_client.get(url).content.decode()
    assert owner.username in page and helper.username in page

    refused = post({owner: Role.DEVELOPER, helper: Role.VIEWER})
    assert refused.status_code == 200
    assert "needs at least one admin" in refused.content.decode()

    accepted = post({owner: Role.DEVELOPER, helper: Role.ADMIN})
    assert accepted.status_code == 302
    assert Membership.objects.get(user=helper).role == Role.ADMIN
    assert ActivityEntry.objects.filter(action="team.member_set", team=team).count() == 2


def test_it_is_closed_to_non_staff(client, developer, deployment):
    client.force_login(developer)
    assert client.get(reverse(CHANGELIST)).status_code == 302
    assert client.get(change_url(deployment)).status_code == 302
