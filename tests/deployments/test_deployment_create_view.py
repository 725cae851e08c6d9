"""The create wizard, through HTTP: the form, the name check as it is typed, errors, and success."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.urls import reverse

import templates_catalog
from deployments import services
from deployments.models import ActivityEntry, Deployment, Operation, Role
from templates_catalog.loader import sync_catalog
from templates_catalog.models import Template


@pytest.fixture
def project(make_project):
    return make_project("fastapi-redis", slug="shop")


@pytest.fixture
def create_url(project):
    return reverse("deployment_create", args=[project.pk])


@pytest.fixture
def check_url(project):
    return reverse("deployment_name_check", args=[project.pk])


def valid(**changes) -> dict:
    data = {"name": "feature-y", "stage": "development", "branch": "main", "size": "small", "addons": ["redis"]}
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def nothing_created() -> bool:
    return not Deployment.objects.exists() and not Operation.objects.exists() and not ActivityEntry.objects.exists()


# ----------------------------------------------------------------------------- the form


def test_it_offers_the_templates_stages_sizes_and_optional_addons(developer_client, create_url):
    response = developer_client.get(create_url)

    assert response.status_code == 200
    form = response.context["form"]
    assert [value for value, _ in form.fields["stage"].choices] == ["development", "staging", "production"]
    assert [value for value, _ in form.fields["addons"].choices] == ["redis"]
    assert form.fields["addons"].initial == ["redis"]
    page = response.content.decode()
    assert 'value="development"' in page and "runs your code from Git with hot reload" in page
    assert f'hx-get="{reverse("deployment_name_check", args=[response.context["project"].pk])}"' in page


def test_it_says_where_to_set_the_repository_a_development_deployment_clones(developer_client, project, create_url):
    project.repository = ""
    project.save()

    page = developer_client.get(create_url).content.decode()
    assert "Shop has no repository yet, so a development deployment has no code to clone" in page
    assert f'href="{reverse("project_settings", args=[project.pk])}"' in page

    response = developer_client.post(create_url, valid())
    assert response.status_code == 200
    assert response.context["form"].errors["branch"] == [
        "Shop has no repository to clone: set one in the project's settings first."
    ]
    assert nothing_created()


def test_it_says_nothing_of_the_repository_when_there_is_one(developer_client, create_url):
    assert "no repository yet" not in developer_client.get(create_url).content.decode()


def test_it_says_nothing_of_cloning_when_the_template_has_no_development_stage(
    developer_client, make_project, tmp_path
):
    shipped = Path(templates_catalog.__file__).parent / "catalog" / "static-nginx.yaml"
    text = shipped.read_text().replace("slug: static-nginx", "slug: static-built")
    for development_only in (
        "  development: source\n",
        "    storage:\n      code:\n        path: /srv/site\n        size: 1Gi\n        stages: [development]\n",
        "ssh:\n  - component: web\n    stages: [development]\n",
    ):
        assert development_only in text
        text = text.replace(development_only, "", 1)
    (tmp_path / "static-built.yaml").write_text(text)
    assert not sync_catalog(tmp_path).failed
    project = make_project("static-nginx", slug="site")
    project.template = Template.objects.get(slug="static-built")
    project.repository = ""
    project.save()

    page = developer_client.get(reverse("deployment_create", args=[project.pk])).content.decode()

    assert 'value="production"' in page and 'value="development"' not in page
    assert "no repository yet" not in page


def test_it_offers_only_the_stages_the_template_has(developer_client, make_project, tmp_path):
    shipped = Path(templates_catalog.__file__).parent / "catalog" / "static-nginx.yaml"
    text = shipped.read_text().replace("slug: static-nginx", "slug: static-lite")
    text = text.replace("  staging: build\n", "", 1)
    (tmp_path / "static-lite.yaml").write_text(text)
    assert not sync_catalog(tmp_path).failed
    project = make_project("static-nginx", slug="site")
    from templates_catalog.models import Template

    project.template = Template.objects.get(slug="static-lite")
    project.save()
    url = reverse("deployment_create", args=[project.pk])

    page = developer_client.get(url).content.decode()
    assert 'value="development"' in page and 'value="production"' in page
    assert 'value="staging"' not in page
    # No add-on to offer: no add-on section.
    assert "Optional add-ons" not in page

    response = developer_client.post(url, valid(stage="staging", addons=None))
    assert response.status_code == 200
    assert "Select a valid choice" in str(response.context["form"].errors["stage"])
    assert nothing_created()


# ----------------------------------------------------------------------------- the name, as it is typed


def test_it_shows_the_public_address_a_good_name_gives(developer_client, check_url):
    response = developer_client.get(check_url, {"name": "feature-y", "stage": "development"})

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="name-check"' in page
    assert "<code>https://api-feature-y.shop.diploi.localhost</code>" in page
    assert "errorlist" not in page
    assert "<html" not in page  # a fragment, not a page


@pytest.mark.parametrize(
    "name, problem",
    [
        ("Feature", "must be lowercase"),
        ("feature_x", "may contain only lowercase letters, digits and &#x27;-&#x27;"),
        ("-feature", "must start and end with a letter or digit"),
        ("a" * 41, "must be at most 40 characters"),
        ("taken", "already has a deployment called “taken”"),
    ],
)
def test_it_says_what_is_wrong_with_a_name_as_it_is_typed(
    developer_client, check_url, project, developer, name, problem
):
    services.deployment_create(project=project, name="taken", stage="staging", actor=developer)

    page = developer_client.get(check_url, {"name": name}).content.decode()

    assert problem in page
    assert "https://" not in page


def test_it_says_nothing_about_an_empty_name(developer_client, check_url):
    page = developer_client.get(check_url, {"name": ""}).content.decode()
    assert "errorlist" not in page and "https://" not in page


def test_it_ignores_an_unknown_stage_in_the_name_check(developer_client, check_url):
    response = developer_client.get(check_url, {"name": "feature-y", "stage": "qa"})
    assert response.status_code == 200
    assert "https://api-feature-y.shop.diploi.localhost" in response.content.decode()


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "data, field, message",
    [
        (valid(name="Feature Y"), "name", "The name must be lowercase."),
        (valid(name="a" * 41), "name", "Ensure this value has at most 40 characters (it has 41)."),
        (valid(name=""), "name", "This field is required."),
        (valid(stage="qa"), "stage", "Select a valid choice. qa is not one of the available choices."),
        (valid(size="huge"), "size", "Select a valid choice. huge is not one of the available choices."),
        (valid(addons=["postgres"]), "addons", "Select a valid choice. postgres is not one of the available choices."),
        (valid(branch="--upload-pack=evil"), "branch", "Give a branch name (no spaces, not starting with “-”)."),
        (valid(env="just some text"), "env", "Line 1: write service.NAME=value, e.g. app.DEBUG=true."),
        (valid(env="api.LOG_LEVEL=debug\n=oops"), "env", "Line 2: write service.NAME=value, e.g. app.DEBUG=true."),
        (valid(env="nosuch.X=1"), "env", "There is no component or add-on “nosuch”."),
        (valid(env="api.1BAD=x"), "env", "“1BAD” is not a valid variable name"),
        (valid(custom_domains="bad_host.example.com"), "custom_domains", "has an invalid part “bad_host”"),
        (valid(custom_domains="not a domain"), "custom_domains", "has an invalid part “not a domain”"),
        (valid(custom_domains="localhost"), "custom_domains", "must have at least two parts"),
        (valid(custom_domains="x.diploi.localhost"), "custom_domains", "which Diploi assigns itself"),
        (valid(custom_domains="www.example.com\nWWW.example.com"), "custom_domains", "is listed twice"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 20 else None,
)
def test_it_explains_bad_input_on_the_form_and_creates_nothing(
    developer_client, create_url, data, field, message, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = developer_client.post(create_url, data)

    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors.get(field, []))
    assert message in errors, response.context["form"].errors
    # The error is on the page, next to its field, and what was typed is still there.
    page = response.content.decode()
    assert 'class="errorlist' in page
    if data.get("env"):
        assert data["env"].split("\n")[0] in page
    assert nothing_created()
    assert callbacks == []


def test_it_refuses_a_name_already_taken_in_the_project(developer_client, create_url, project, developer):
    services.deployment_create(project=project, name="feature-y", stage="staging", actor=developer)

    response = developer_client.post(create_url, valid())

    assert response.status_code == 200
    assert "The project already has a deployment called “feature-y”." in response.context["form"].errors["name"]
    assert Deployment.objects.count() == 1


def test_it_allows_the_same_name_in_another_project(developer_client, make_project, project, developer):
    services.deployment_create(project=project, name="feature-y", stage="staging", actor=developer)
    other = make_project("fastapi-redis", slug="other")

    response = developer_client.post(reverse("deployment_create", args=[other.pk]), valid())

    assert response.status_code == 302
    assert Deployment.objects.filter(name="feature-y").count() == 2


def test_it_refuses_a_custom_domain_another_deployment_uses(developer_client, create_url, project, developer):
    services.deployment_create(
        project=project, name="main", stage="production", actor=developer, custom_domains=["www.example.com"]
    )

    response = developer_client.post(create_url, valid(custom_domains="www.example.com"))

    assert (
        "“www.example.com” is already used by another deployment." in response.context["form"].errors["custom_domains"]
    )


# ----------------------------------------------------------------------------- success


def test_it_creates_and_lands_on_the_overview_at_once_without_calling_the_cluster(
    developer_client, create_url, emulator, django_capture_on_commit_callbacks
):
    emulator.faults.hang(5)  # any cluster request would stall the response
    started = time.monotonic()
    with django_capture_on_commit_callbacks() as callbacks:
        response = developer_client.post(
            create_url,
            valid(
                env="api.LOG_LEVEL=warning\n# a comment\n\nFEATURE_FLAG=on",
                custom_domains="WWW.Example.com\n",
                addons=None,
            ),
        )
    elapsed = time.monotonic() - started

    deployment = Deployment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("deployment", args=[deployment.pk])
    assert elapsed < 4  # well under the 5 s any cluster request would stall
    assert not any(ns["metadata"]["name"] == deployment.namespace for ns in emulator.snapshot().get("namespaces", []))
    assert callbacks, "the reconcile is enqueued once the transaction commits"
    assert deployment.stage == "development" and deployment.branch == "main"
    assert deployment.enabled_addons == []  # redis unticked
    assert deployment.env_overrides == {"api": {"LOG_LEVEL": "warning", "FEATURE_FLAG": "on"}}
    assert deployment.custom_domains == ["www.example.com"]
    assert deployment.operations.get().kind == Operation.Kind.CREATE
    assert ActivityEntry.objects.get(deployment=deployment).action == "deployment.created"

    overview = developer_client.get(response["Location"])
    assert overview.status_code == 200
    assert "Creating…" in overview.content.decode()


def test_it_offers_a_viewer_no_create_button(client, make_member, project):
    client.force_login(make_member(Role.VIEWER))
    page = client.get(reverse("project", args=[project.pk])).content.decode()
    assert reverse("deployment_create", args=[project.pk]) not in page
