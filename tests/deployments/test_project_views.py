"""The project pages through HTTP: creating a project, its page listing deployments, deleting it."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from deployments import services
from deployments.models import ActivityEntry, Deployment, DeploymentState, DeploymentStatus, Project, Role


@pytest.fixture
def admin_client(client, make_member):
    client.force_login(make_member(Role.ADMIN))
    return client


@pytest.fixture
def project(make_project):
    return make_project("fastapi-redis", slug="shop")


REPOSITORY = "https://github.com/acme/shop.git"


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# ----------------------------------------------------------------------------- creating a project


def test_it_offers_the_available_templates_and_preselects_one(developer_client, catalog):
    response = developer_client.get(reverse("project_create"), {"template": "django-postgres"})

    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.fields["template"].queryset.values_list("slug", flat=True)) == set(catalog)
    assert form["template"].value() == catalog["django-postgres"].pk


def test_it_creates_a_project_and_goes_on_to_its_first_deployment(developer_client, catalog, team):
    response = developer_client.post(
        reverse("project_create"),
        {
            "template": catalog["django-postgres"].pk,
            "name": "Web shop",
            "slug": "web-shop",
            "repository": "git@github.com:acme/shop.git",
        },
        follow=True,
    )

    project = Project.objects.get()
    assert response.redirect_chain == [(reverse("deployment_create", args=[project.pk]), 302)]
    assert "Project “Web shop” created. Now create its first deployment." in messages_of(response)
    assert (project.team, project.slug, project.repository) == (team, "web-shop", "git@github.com:acme/shop.git")
    assert ActivityEntry.objects.get(action="project.created").project == project


def test_it_makes_the_short_name_from_the_name_when_left_empty(developer_client, catalog):
    response = developer_client.post(
        reverse("project_create"),
        {"template": catalog["django-postgres"].pk, "name": "Web Shop 2", "slug": "", "repository": REPOSITORY},
    )

    assert response.status_code == 302
    assert Project.objects.get().slug == "web-shop-2"


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"slug": "Web_Shop"}, "slug", "The short name must be lowercase."),
        ({"slug": "web_shop"}, "slug", "The short name may contain only lowercase letters, digits and '-'."),
        ({"slug": "shop"}, "slug", "The short name “shop” is already taken on this Diploi: pick another."),
        ({"slug": "a" * 31}, "slug", "Ensure this value has at most 30 characters (it has 31)."),
        ({"repository": "ftp://example.com/x"}, "repository", "Give an https://, ssh:// or git@host: address"),
        ({"repository": ""}, "repository", "Django + PostgreSQL runs your app's own code: give the Git repository"),
        ({"name": ""}, "name", "This field is required."),
        ({"template": "999999"}, "template", "Select a valid choice."),
    ],
)
def test_it_explains_bad_project_input_and_creates_nothing(developer_client, catalog, project, data, field, message):
    fields = {
        "template": catalog["django-postgres"].pk,
        "name": "Web shop",
        "slug": "web-shop",
        "repository": REPOSITORY,
    }
    fields.update(data)

    response = developer_client.post(reverse("project_create"), fields)

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert list(Project.objects.all()) == [project]


def test_it_refuses_a_disabled_template(developer_client, catalog):
    catalog["static-nginx"].enabled = False
    catalog["static-nginx"].save()

    response = developer_client.post(
        reverse("project_create"), {"template": catalog["static-nginx"].pk, "name": "Site", "slug": "site"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors["template"]
    assert not Project.objects.exists()


def test_it_lets_a_template_with_a_starter_repository_do_without_one(developer_client, catalog):
    version = catalog["static-nginx"].current_version
    version.spec_data = {**version.spec_data, "repository": "https://github.com/acme/starter.git"}
    version.digest = "0" * 64  # a version's parsed spec is cached by its digest
    version.save()

    response = developer_client.post(
        reverse("project_create"), {"template": catalog["static-nginx"].pk, "name": "Site", "repository": ""}
    )

    assert response.status_code == 302
    project = Project.objects.get()
    assert (project.repository, project.repository_url) == ("", "https://github.com/acme/starter.git")


# ----------------------------------------------------------------------------- project settings


def test_it_shows_the_settings_filled_in(developer_client, project):
    response = developer_client.get(reverse("project_settings", args=[project.pk]))

    assert response.status_code == 200
    assert response.context["form"]["name"].value() == "Shop"
    assert response.context["form"]["repository"].value() == "https://github.com/acme/shop.git"


def test_it_renames_a_project_and_changes_its_repository(developer_client, project, developer):
    response = developer_client.post(
        reverse("project_settings", args=[project.pk]),
        {"name": "Web shop", "repository": "git@github.com:acme/web-shop.git"},
        follow=True,
    )

    assert response.redirect_chain == [(reverse("project", args=[project.pk]), 302)]
    assert "Project settings saved." in messages_of(response)
    project.refresh_from_db()
    assert (project.name, project.repository, project.slug) == ("Web shop", "git@github.com:acme/web-shop.git", "shop")
    entry = ActivityEntry.objects.get(action="project.updated")
    assert (entry.project, entry.actor) == (project, developer)
    assert entry.message == (
        "Project changed: name “Shop” → “Web shop”; "
        "repository “https://github.com/acme/shop.git” → “git@github.com:acme/web-shop.git”"
    )
    assert "git@github.com:acme/web-shop.git" in response.content.decode()


def test_it_records_nothing_when_nothing_changed(developer_client, project):
    response = developer_client.post(
        reverse("project_settings", args=[project.pk]), {"name": "Shop", "repository": project.repository}
    )

    assert response.status_code == 302
    assert not ActivityEntry.objects.filter(action="project.updated").exists()


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"name": " "}, "name", "This field is required."),
        ({"repository": "github.com/acme/shop"}, "repository", "Give an https://, ssh:// or git@host: address"),
        ({"repository": ""}, "repository", "FastAPI + Redis runs your app's own code: give the Git repository"),
    ],
)
def test_it_explains_bad_settings_and_keeps_the_project(developer_client, project, data, field, message):
    response = developer_client.post(
        reverse("project_settings", args=[project.pk]), {"name": "Renamed", "repository": project.repository, **data}
    )

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    project.refresh_from_db()
    assert (project.name, project.repository) == ("Shop", "https://github.com/acme/shop.git")
    assert not ActivityEntry.objects.filter(action="project.updated").exists()


# ----------------------------------------------------------------------------- the project page


def test_it_lists_live_deployments_with_their_health_in_words(developer_client, project, developer):
    healthy = services.deployment_create(project=project, name="main", stage="production", actor=developer)
    failing = services.deployment_create(project=project, name="feature-x", stage="development", actor=developer)
    services.deployment_create(project=project, name="fresh", stage="staging", actor=developer)
    gone = services.deployment_create(project=project, name="old", stage="staging", actor=developer)
    Deployment.objects.filter(pk=gone.pk).update(state=DeploymentState.DELETED)
    now = timezone.now()
    DeploymentStatus.objects.create(deployment=healthy, health="green", reason="All services ready", cpu_millicores=250)
    DeploymentStatus.objects.create(
        deployment=failing, health="red", reason="api: CrashLoopBackOff (exit code 1)", since=now
    )

    response = developer_client.get(reverse("project", args=[project.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert [d.name for d in response.context["deployments"]] == ["feature-x", "fresh", "main"]
    assert 'data-deployment="old"' not in page
    rows = {name: _row(page, name) for name in ("main", "feature-x", "fresh")}
    assert "Healthy</span>" in rows["main"] and "All services ready" not in rows["main"]  # green needs no reason
    assert "250m CPU" in rows["main"]
    assert "Failing</span>" in rows["feature-x"] and "api: CrashLoopBackOff (exit code 1)" in rows["feature-x"]
    assert "Unknown</span>" in rows["fresh"] and "Creating…" in rows["fresh"]
    assert "just now" in rows["fresh"]  # last activity
    assert '<span class="badge badge-development">Development</span>' in rows["feature-x"]
    assert 'ws-connect="/ws/projects/' in page


def _row(page: str, name: str) -> str:
    start = page.index(f'data-deployment="{name}"')
    return page[start : page.index("</tr>", start)]


def test_it_shows_an_empty_project_its_first_step(developer_client, project):
    page = developer_client.get(reverse("project", args=[project.pk])).content.decode()

    assert "No deployments yet" in page
    assert "Create the first one" in page


@pytest.mark.parametrize(
    "role, can_create, can_delete",
    [(Role.VIEWER, False, False), (Role.DEVELOPER, True, False), (Role.ADMIN, True, True)],
)
def test_it_shows_each_role_only_the_buttons_it_may_use(client, make_member, project, role, can_create, can_delete):
    client.force_login(make_member(role))

    page = client.get(reverse("project", args=[project.pk])).content.decode()

    assert (reverse("deployment_create", args=[project.pk]) in page) == can_create
    assert (reverse("project_settings", args=[project.pk]) in page) == can_create
    assert (reverse("project_delete", args=[project.pk]) in page) == can_delete


# ----------------------------------------------------------------------------- deleting a project


@pytest.mark.parametrize("state", [DeploymentState.RUNNING, DeploymentState.DELETING, DeploymentState.FAILED])
def test_it_refuses_to_delete_a_project_with_live_deployments(admin_client, project, developer, state):
    deployment = services.deployment_create(project=project, name="main", stage="production", actor=developer)
    Deployment.objects.filter(pk=deployment.pk).update(state=state)

    response = admin_client.post(reverse("project_delete", args=[project.pk]), follow=True)

    assert response.redirect_chain == [(reverse("project", args=[project.pk]), 302)]
    assert "Delete the project's deployments first." in messages_of(response)
    assert Project.objects.filter(pk=project.pk).exists()
    assert not ActivityEntry.objects.filter(action="project.deleted").exists()


def test_it_deletes_a_project_without_deployments(admin_client, project, developer, team):
    old = services.deployment_create(project=project, name="old", stage="staging", actor=developer)
    Deployment.objects.filter(pk=old.pk).update(state=DeploymentState.DELETED)

    response = admin_client.post(reverse("project_delete", args=[project.pk]), follow=True)

    assert response.redirect_chain == [(reverse("projects"), 302)]
    assert "Project “Shop” deleted." in messages_of(response)
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not Deployment.objects.exists()  # the tombstones go with it
    entry = ActivityEntry.objects.get(action="project.deleted")
    assert entry.team == team and entry.message == "Project “Shop” deleted"
    assert f'href="{reverse("project", args=[project.pk])}"' not in response.content.decode()


def test_it_pages_a_long_list_of_deployments(developer_client, project):
    version = project.template.current_version
    Deployment.objects.bulk_create(
        Deployment(project=project, name=f"d{i:03}", stage="production", template_version=version, namespace=f"ns-{i}")
        for i in range(101)
    )
    first = developer_client.get(reverse("project", args=[project.pk])).content.decode()
    assert first.count('<tr id="deployment-row-') == 100
    assert "Page 1 of 2 · 101 deployments" in first
    assert f'ws-connect="/ws/projects/{project.pk}/?page=1"' in first
    second = developer_client.get(reverse("project", args=[project.pk]) + "?page=2").content.decode()
    assert second.count('<tr id="deployment-row-') == 1 and 'data-deployment="d100"' in second
