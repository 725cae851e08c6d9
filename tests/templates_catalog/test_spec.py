"""The parsed spec's JSON round trip, as stored on `TemplateVersion.spec_data`."""

from __future__ import annotations

import json
from dataclasses import replace

from templates_catalog.spec import TemplateSpec
from templates_catalog.validation import parse_template
from tests.templates_catalog.conftest import SHIPPED_DIR


def test_it_restores_stage_order_from_json_that_lost_it():
    spec = parse_template((SHIPPED_DIR / "django-postgres.yaml").read_text(), "django-postgres.yaml")
    data = json.loads(json.dumps(spec.to_dict(), sort_keys=True))  # like the canonical JSON, or jsonb
    data["stages"] = dict(reversed(list(data["stages"].items())))

    restored = TemplateSpec.from_dict(data)

    assert list(restored.stages) == ["development", "staging", "production"]
    assert list(restored.component("app").stages) == ["development", "production"]
    assert restored == spec


def test_it_knows_which_variables_of_a_service_are_secrets_including_imported_ones():
    from pathlib import Path

    from templates_catalog.validation import parse_template

    path = Path(__file__).resolve().parents[2] / "templates_catalog" / "catalog" / "django-postgres.yaml"
    spec = parse_template(path.read_text(), path.name)
    assert spec.secret_names("postgres", "production") == {"POSTGRES_PASSWORD"}
    app = spec.secret_names("app", "production")
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "POSTGRES_PASSWORD"} <= app
    assert "POSTGRES_USER" not in app


def test_it_knows_whether_deployments_run_the_apps_own_code():
    spec = parse_template((SHIPPED_DIR / "static-nginx.yaml").read_text(), "static-nginx.yaml")
    assert spec.uses_repository  # development clones it

    built_only = replace(spec, stages={"staging": "build", "production": "build"})
    assert built_only.uses_repository  # staging and production build it

    image_only = replace(built_only, components=tuple(replace(c, build=None) for c in spec.components))
    assert not image_only.uses_repository  # nginx's own image serves what it holds
