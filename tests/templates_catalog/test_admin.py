"""The operators' admin for templates and versions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from templates_catalog.loader import sync_catalog
from templates_catalog.models import Template, TemplateVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def changed_django(loaded_catalog, make_deployment):
    """django-postgres with two versions: one deployment on the old one, one on the new."""
    template = Template.objects.get(slug="django-postgres")
    old = make_deployment(template, name="legacy")
    path = loaded_catalog / "django-postgres.yaml"
    path.write_text(path.read_text().replace('version: "1.1.0"', 'version: "1.2.0"'))
    sync_catalog(loaded_catalog)
    template.refresh_from_db()
    new = make_deployment(template, name="fresh")
    return template, old, new


def test_it_lists_templates_with_their_state_and_usage(superuser_client, changed_django):
    template, _, _ = changed_django
    Template.objects.filter(slug="static-nginx").update(validation=Template.Validation.INVALID)

    response = superuser_client.get(reverse("admin:templates_catalog_template_changelist"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Django + PostgreSQL" in page and "Invalid" in page and "1.2.0" in page
    row = next(r for r in response.context["cl"].result_list if r.pk == template.pk)
    assert (row.deployment_count, row.outdated_count) == (2, 1)


def test_it_filters_templates(superuser_client, loaded_catalog):
    Template.objects.filter(slug="static-nginx").update(enabled=False)

    response = superuser_client.get(reverse("admin:templates_catalog_template_changelist"), {"enabled__exact": "0"})

    assert [t.slug for t in response.context["cl"].result_list] == ["static-nginx"]


def test_it_shows_the_parsed_spec_versions_and_deployments(superuser_client, changed_django):
    template, old, new = changed_django
    Template.objects.filter(pk=template.pk).update(last_error="django-postgres.yaml:3: version: must not be empty")

    response = superuser_client.get(reverse("admin:templates_catalog_template_change", args=[template.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "runs the source" in page and "PostgreSQL 16" in page and "5 GiB" in page  # the parsed spec
    assert "version: must not be empty" in page  # last error
    assert "1.1.0" in page and "1.2.0" in page  # versions inline
    assert f"{old.project.slug}/legacy</a> runs 1.1.0" in page  # on an old version
    assert f"{new.project.slug}/fresh" in page
    assert 'name="enabled"' in page and 'name="slug"' not in page  # only `enabled` is editable


def test_it_lets_operators_toggle_enabled(superuser_client, loaded_catalog):
    template = Template.objects.get(slug="static-nginx")
    url = reverse("admin:templates_catalog_template_change", args=[template.pk])
    versions = template.versions.count()
    form = {
        "versions-TOTAL_FORMS": str(versions),
        "versions-INITIAL_FORMS": str(versions),
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
    }
    for index, version in enumerate(template.versions.all()):
        form[f"versions-{index}-id"] = str(version.pk)
        form[f"versions-{index}-template"] = str(template.pk)

    response = superuser_client.post(url, {**form, "name": "Changed?"})  # `enabled` unticked

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    template.refresh_from_db()
    assert not template.enabled and template.name == "Static site (nginx)"


def test_it_enables_and_disables_with_actions(superuser_client, loaded_catalog):
    url = reverse("admin:templates_catalog_template_changelist")
    pks = list(Template.objects.values_list("pk", flat=True))

    superuser_client.post(url, {"action": "disable_templates", "_selected_action": pks})
    assert not Template.objects.filter(enabled=True).exists()

    superuser_client.post(url, {"action": "enable_templates", "_selected_action": pks})
    assert not Template.objects.filter(enabled=False).exists()


def test_it_does_not_add_or_delete_templates(superuser_client, loaded_catalog):
    template = Template.objects.get(slug="static-nginx")
    assert superuser_client.get(reverse("admin:templates_catalog_template_add")).status_code == 403
    delete = reverse("admin:templates_catalog_template_delete", args=[template.pk])
    assert superuser_client.post(delete, {"post": "yes"}).status_code == 403
    assert Template.objects.filter(pk=template.pk).exists()


def test_it_shows_a_template_without_a_version(superuser_client, db):
    template = Template.objects.create(slug="half", name="Half", validation="invalid", last_error="half.yaml: boom")

    response = superuser_client.get(reverse("admin:templates_catalog_template_change", args=[template.pk]))

    assert response.status_code == 200 and "No valid version loaded yet." in response.content.decode()


def test_it_shows_versions_read_only(superuser_client, changed_django):
    template, old, _ = changed_django
    version = old.template_version

    listing = superuser_client.get(reverse("admin:templates_catalog_templateversion_changelist"))
    detail = superuser_client.get(reverse("admin:templates_catalog_templateversion_change", args=[version.pk]))

    assert listing.status_code == 200 and detail.status_code == 200
    page = detail.content.decode()
    assert f"{old.project.slug}/legacy" in page and "gunicorn" in page and "slug: django-postgres" in page
    assert 'name="version"' not in page
    assert superuser_client.get(reverse("admin:templates_catalog_templateversion_add")).status_code == 403
    delete = reverse("admin:templates_catalog_templateversion_delete", args=[version.pk])
    assert superuser_client.post(delete, {"post": "yes"}).status_code == 403
    assert TemplateVersion.objects.filter(pk=version.pk).exists()


def test_it_is_closed_to_non_staff(client, developer, loaded_catalog):
    client.force_login(developer)
    response = client.get(reverse("admin:templates_catalog_template_changelist"))
    assert response.status_code == 302
