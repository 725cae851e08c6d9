"""Read-side queries: the catalog list, deployments on old versions, usage counts."""

from __future__ import annotations

import pytest

from deployments.models import DeploymentState
from templates_catalog import selectors
from templates_catalog.loader import sync_catalog
from templates_catalog.models import Template

pytestmark = pytest.mark.django_db


def new_version(directory, slug: str, version: str) -> Template:
    path = directory / f"{slug}.yaml"
    text = path.read_text()
    path.write_text(text.replace('version: "1.1.0"', f'version: "{version}"', 1).replace("1.1.0\n", f"{version}\n"))
    sync_catalog(directory)
    return Template.objects.get(slug=slug)


def test_it_lists_only_available_templates_by_name(loaded_catalog):
    Template.objects.filter(slug="static-nginx").update(enabled=False)
    Template.objects.create(slug="no-version", name="AAA no version")

    names = [t.name for t in selectors.catalog_templates()]

    assert names == sorted(names)
    assert "Static site (nginx)" not in names and "AAA no version" not in names
    assert len(names) == Template.objects.count() - 2


def test_it_finds_deployments_on_old_versions(loaded_catalog, make_deployment):
    django = Template.objects.get(slug="django-postgres")
    nginx = Template.objects.get(slug="static-nginx")
    old_django = make_deployment(django)
    make_deployment(nginx)
    django = new_version(loaded_catalog, "django-postgres", "1.2.0")
    make_deployment(django)
    make_deployment(django, version=old_django.template_version, state=DeploymentState.DELETED)

    assert list(selectors.outdated_deployments()) == [old_django]
    assert list(selectors.outdated_deployments(template=nginx)) == []


def test_it_counts_deployments_and_outdated_ones(loaded_catalog, make_deployment):
    django = Template.objects.get(slug="django-postgres")
    first = django.current_version
    make_deployment(django)
    make_deployment(django)
    make_deployment(django, state=DeploymentState.DELETED)
    django = new_version(loaded_catalog, "django-postgres", "1.2.0")
    make_deployment(django)

    counts = {t.slug: (t.deployment_count, t.outdated_count) for t in selectors.templates_with_usage()}

    assert counts["django-postgres"] == (3, 2)
    assert counts["static-nginx"] == (0, 0)
    assert [d.template_version for d in selectors.deployments_of_version(first)] == [first, first]
