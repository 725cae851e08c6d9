"""The catalog pages: the list and a template's detail page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from deployments.models import Role
from templates_catalog.models import Template
from tests.templates_catalog.conftest import SHIPPED_FILES

pytestmark = pytest.mark.django_db

WITH_WIZARD = "tests.templates_catalog.urls_with_project_create"


def test_it_sends_anonymous_users_to_the_login_page(client, loaded_catalog):
    for url in (reverse("catalog"), reverse("catalog_template", args=["django-postgres"])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_it_lists_enabled_templates_with_stages_components_and_addons(developer_client, loaded_catalog):
    Template.objects.filter(slug="static-nginx").update(enabled=False)

    response = developer_client.get(reverse("catalog"))

    assert response.status_code == 200
    page = response.content.decode()
    for name in ("Django + PostgreSQL", "Next.js + PostgreSQL", "FastAPI + Redis"):
        assert name in page
    assert "Static site (nginx)" not in page
    assert "development · source" in page and "production · build" in page
    assert "PostgreSQL 16" in page and 'Redis 7 <span class="muted">(optional)</span>' in page
    assert reverse("catalog_template", args=["django-postgres"]) in page


def test_it_says_when_the_catalog_is_empty(developer_client):
    response = developer_client.get(reverse("catalog"))
    assert "The catalog is empty" in response.content.decode()


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda path: path.stem)
def test_it_shows_every_shipped_template(developer_client, loaded_catalog, path):
    response = developer_client.get(reverse("catalog_template", args=[path.stem]))

    assert response.status_code == 200
    spec = response.context["spec"]
    page = response.content.decode()
    assert spec.name in page.replace("&amp;", "&")
    for component in spec.components:
        assert component.name in page and component.code_path in page


def test_it_shows_everything_needed_to_choose_a_template(developer_client, loaded_catalog, settings):
    settings.BASE_DOMAIN = "apps.example.com"
    settings.SSH_HOST = "ssh.example.com"
    settings.SSH_PORT = 2222

    page = developer_client.get(reverse("catalog_template", args=["django-postgres"])).content.decode()

    # stages and what each runs
    assert "runs the source" in page and "runs the build" in page
    assert "manage.py runserver 0.0.0.0:8000" in page and "gunicorn --bind 0.0.0.0:8000" in page
    assert "2 replicas" in page
    # components, ports, public endpoints
    assert "<dt>Port</dt><dd>8000</dd>" in page
    assert "https://app-&lt;deployment&gt;.&lt;project&gt;.apps.example.com" in page
    # add-ons, storage, health
    assert "always included" in page and "postgres:16" in page
    assert "5 GiB" in page and "/var/lib/postgresql/data" in page
    assert "TCP connect to port 5432" in page
    # SSH access
    assert "ssh app.&lt;deployment&gt;.&lt;project&gt;@ssh.example.com -p 2222" in page
    # secrets are never shown
    assert "generated per deployment" in page and "set by the template (hidden)" in page
    assert "${POSTGRES_PASSWORD}" not in page


def test_it_marks_optional_addons(developer_client, loaded_catalog):
    page = developer_client.get(reverse("catalog_template", args=["fastapi-redis"])).content.decode()
    assert "optional, on by default" in page


@pytest.mark.urls(WITH_WIZARD)
def test_it_links_to_the_project_wizard_with_the_template(developer_client, loaded_catalog):
    page = developer_client.get(reverse("catalog_template", args=["static-nginx"])).content.decode()

    assert f'href="{reverse("project_create")}?template=static-nginx"' in page
    assert "Start a project" in page


@pytest.mark.urls(WITH_WIZARD)
def test_it_tells_viewers_they_cannot_start_a_project(client, make_member, loaded_catalog):
    client.force_login(make_member(Role.VIEWER))

    page = client.get(reverse("catalog_template", args=["static-nginx"])).content.decode()

    assert "Start a project" not in page and "needs the developer role" in page


def test_it_renders_before_the_project_wizard_exists(developer_client, loaded_catalog):
    response = developer_client.get(reverse("catalog_template", args=["static-nginx"]))
    assert response.status_code == 200


def test_it_hides_disabled_and_never_loaded_templates(developer_client, loaded_catalog):
    Template.objects.filter(slug="static-nginx").update(enabled=False)
    Template.objects.create(slug="broken", name="Broken", validation=Template.Validation.INVALID)

    for slug in ("static-nginx", "broken", "no-such-template"):
        assert developer_client.get(reverse("catalog_template", args=[slug])).status_code == 404


def test_it_keeps_showing_the_last_good_version_of_a_broken_template(developer_client, loaded_catalog):
    Template.objects.filter(slug="static-nginx").update(validation=Template.Validation.INVALID, last_error="x")
    assert developer_client.get(reverse("catalog_template", args=["static-nginx"])).status_code == 200


def test_it_lists_the_catalog_in_a_fixed_number_of_queries(
    developer_client, loaded_catalog, django_assert_max_num_queries
):
    with django_assert_max_num_queries(8):
        developer_client.get(reverse("catalog"))


def test_it_refuses_posts(developer_client, loaded_catalog):
    assert developer_client.post(reverse("catalog")).status_code == 405
