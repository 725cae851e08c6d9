"""Fixtures for the template catalog: copies of the shipped catalog, loaded templates, deployments."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

import templates_catalog
from deployments.models import Deployment, Project
from deployments.naming import namespace_for
from templates_catalog.loader import sync_catalog
from templates_catalog.models import Template

SHIPPED_DIR = Path(templates_catalog.__file__).parent / "catalog"
SHIPPED_FILES = sorted(SHIPPED_DIR.glob("*.yaml"))
BROKEN_DIR = Path(__file__).parent / "broken"

_counter = itertools.count(1)


@pytest.fixture
def catalog_dir(tmp_path) -> Path:
    """A private copy of the shipped catalog, free to edit."""
    directory = tmp_path / "catalog"
    shutil.copytree(SHIPPED_DIR, directory)
    return directory


@pytest.fixture
def loaded_catalog(db, catalog_dir) -> Path:
    """The shipped catalog loaded into the database (from a private copy)."""
    report = sync_catalog(catalog_dir)
    assert not report.failed, report.results
    return catalog_dir


@pytest.fixture
def make_deployment(db, team):
    """A deployment of ``template`` (on its current version unless ``version`` is given)."""

    def make(template: Template, *, version=None, name: str | None = None, **extra) -> Deployment:
        project, _ = Project.objects.get_or_create(
            team=team, slug=template.slug[:30], defaults={"name": template.name, "template": template}
        )
        name = name or f"d{next(_counter)}"
        deployment = Deployment(
            project=project,
            name=name,
            stage=extra.pop("stage", "development"),
            template_version=version or template.current_version,
            namespace=namespace_for(project.slug, name),
            **extra,
        )
        # A plain row: bulk_create skips save(), which schedules a reconcile the catalog has no use for.
        Deployment.objects.bulk_create([deployment])
        return Deployment.objects.get(project=project, name=name)

    return make


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser(username="root", email="", password="not-used-here")
    client.force_login(user)
    return client
