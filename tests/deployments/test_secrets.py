"""Secrets stay secret wherever they travel: references, stage-only secrets, expansion bounds,
repository credentials, the admin and the manifests command (issue 15, items 4 to 8)."""

from __future__ import annotations

import base64
import io
import time

import pytest
from django.core.management import call_command
from django.urls import reverse

from deployments import services
from deployments.cluster.environment import resolve_environment
from deployments.forms import SECRET_MASK
from deployments.lifecycle import reconcile_run
from deployments.models import ActivityEntry, Deployment, Project, Role
from templates_catalog.validation import parse_template


@pytest.fixture
def deployment(make_project, developer):
    return services.deployment_create(
        project=make_project("django-postgres", slug="shop"), name="prod", stage="production", actor=developer
    )


@pytest.fixture
def viewer_client(client, make_member):
    client.force_login(make_member(Role.VIEWER))
    return client


def resolved(deployment, service="app") -> dict[str, str]:
    deployment = Deployment.objects.get(pk=deployment.pk)
    return resolve_environment(
        deployment.spec,
        deployment.stage,
        generated=deployment.generated_secrets,
        overrides=deployment.env_overrides,
        present={"app", "postgres"},
    )[service]


# ----------------------------------------------------------------------------- 4: references to secrets


@pytest.mark.parametrize("reference", ["${DJANGO_SECRET_KEY}", "${POSTGRES_PASSWORD}", "x-${DATABASE_URL}"])
def test_a_value_referencing_a_secret_is_masked_for_viewers(deployment, developer, viewer_client, reference):
    services.deployment_update(deployment=deployment, actor=developer, env_overrides={"app": {"REF": reference}})
    value = resolved(deployment)["REF"]
    assert len(value) > 20

    page = viewer_client.get(reverse("deployment_options", args=[deployment.pk])).content.decode()

    assert value not in page
    assert '<td class="mono">REF</td>' in page


def test_a_reference_through_another_override_is_secret_too_and_its_reveal_is_audited(deployment, developer, client):
    from deployments.cluster.environment import secret_variables

    overrides = {"app": {"HOP": "${DJANGO_SECRET_KEY}", "REF": "pre-${HOP}"}}
    services.deployment_update(deployment=deployment, actor=developer, env_overrides=overrides)
    assert secret_variables(deployment.spec, "production", overrides=overrides, present={"app"})["app"] >= {
        "HOP",
        "REF",
    }
    client.force_login(developer)

    page = client.get(reverse("deployment_options", args=[deployment.pk])).content.decode()
    assert resolved(deployment)["REF"] not in page
    assert f"app.REF={SECRET_MASK}" in page  # the form masks the override too

    response = client.post(reverse("deployment_reveal", args=[deployment.pk]), {"service": "app", "name": "REF"})
    assert resolved(deployment)["REF"] in response.content.decode()
    assert ActivityEntry.objects.filter(action="secret.revealed", data__variable="REF").exists()


def test_an_override_of_a_source_that_references_its_secret_is_secret_where_imported(deployment, developer):
    from deployments.cluster.environment import secret_variables

    overrides = {"postgres": {"POSTGRES_USER": "${POSTGRES_PASSWORD}"}}

    secret = secret_variables(deployment.spec, "production", overrides=overrides, present={"app", "postgres"})

    assert "POSTGRES_USER" in secret["postgres"] and "POSTGRES_USER" in secret["app"]


# ----------------------------------------------------------------------------- 5: stage-only secrets

STAGE_SECRET = """
slug: stage-secret
name: Stage secret
description: A secret declared only in production, imported by another component.
version: "1"
stages: {development: source, production: build}
components:
  - id: api
    name: API
    image: node:22
    port: 3000
    code_path: /app
    dev_command: [npm, run, dev]
    storage: {code: {path: /app, size: 1Gi, stages: [development]}}
    stages:
      production:
        env:
          API_TOKEN: {type: secret}
  - id: web
    name: Web
    image: node:22
    port: 3001
    code_path: /web
    dev_command: [npm, run, dev]
    storage: {code: {path: /web, size: 1Gi, stages: [development]}}
    imports: [api.API_TOKEN]
"""


def test_a_secret_declared_only_in_a_stage_is_secret_where_it_is_imported():
    spec = parse_template(STAGE_SECRET, "stage-secret.yaml")

    assert spec.secret_names("web", "production") == {"API_TOKEN"}
    from deployments.cluster.environment import secret_variables

    assert secret_variables(spec, "production", overrides={}, present={"api", "web"})["web"] == {"API_TOKEN"}


# ----------------------------------------------------------------------------- 6: expansion


def doubling_lines(count: int) -> str:
    lines = ["app.B0=xxxxxxxxxxxxxxxx"]
    lines += [f"app.B{i}=${{B{i - 1}}}${{B{i - 1}}}" for i in range(1, count)]
    return "\n".join(lines)


def test_it_refuses_overrides_whose_references_explode_and_saves_nothing(deployment, developer, client):
    client.force_login(developer)

    response = client.post(reverse("deployment_environment", args=[deployment.pk]), {"env": doubling_lines(17)})

    assert response.status_code == 422
    page = response.content.decode()
    assert "Too large: B" in page and "longer than 32 KiB once its references are filled in" in page
    assert len(page) < 200_000
    assert Deployment.objects.get(pk=deployment.pk).env_overrides == {}


def test_resolving_stops_early_however_many_doublings(deployment):
    from deployments.cluster.environment import EnvironmentTooLarge

    overrides = {"app": {"B0": "x" * 16, **{f"B{i}": f"${{B{i - 1}}}${{B{i - 1}}}" for i in range(1, 60)}}}
    started = time.monotonic()

    with pytest.raises(EnvironmentTooLarge):
        resolve_environment(
            deployment.spec, "production", generated=deployment.generated_secrets, overrides=overrides, present={"app"}
        )

    assert time.monotonic() - started < 5  # without the early stop it would never end


# ----------------------------------------------------------------------------- 7: repository credentials


def test_it_refuses_a_repository_url_with_credentials(deployment, developer, client):
    client.force_login(developer)
    url = reverse("project_settings", args=[deployment.project_id])

    response = client.post(url, {"name": "Shop", "repository": "https://bot:ghp_secret@github.com/acme/shop.git"})

    assert "must not contain credentials" in response.content.decode()
    assert Project.objects.get(pk=deployment.project_id).repository == "https://github.com/acme/shop.git"
    for allowed in ("ssh://git@github.com/acme/shop.git", "git@github.com:acme/shop.git"):
        services.project_update(project=deployment.project, name="Shop", repository=allowed, actor=developer)


def test_credentials_already_stored_are_redacted_everywhere_viewers_look(
    deployment, developer, viewer_client, emulator
):
    leaked = "https://bot:ghp_secret@github.com/acme/shop.git"
    Project.objects.filter(pk=deployment.project_id).update(repository=leaked)
    dev = services.deployment_create(project=deployment.project, name="dev", stage="development", actor=developer)
    reconcile_run(dev.pk, owner="test")
    services.project_update(
        project=deployment.project, name="Shop 2", repository="https://github.com/acme/shop.git", actor=developer
    )
    Project.objects.filter(pk=deployment.project_id).update(repository=leaked)

    pages = [
        viewer_client.get(reverse("project", args=[deployment.project_id])),
        viewer_client.get(reverse("deployment", args=[dev.pk])),
        viewer_client.get(reverse("deployment_describe", args=[dev.pk, "app"])),
    ]

    assert all(page.status_code == 200 for page in pages)
    assert "https://***@github.com/acme/shop.git" in pages[2].content.decode()
    for page in pages:
        assert "ghp_secret" not in page.content.decode()
    assert not ActivityEntry.objects.filter(message__contains="ghp_secret").exists()


# ----------------------------------------------------------------------------- 8: the admin and the manifests command


def test_the_admin_masks_secret_overrides_and_keeps_them_when_left_masked(deployment, developer, client, admin_user):
    services.deployment_update(
        deployment=deployment, actor=developer, env_overrides={"app": {"DJANGO_SECRET_KEY": "s3cr3t-v4lue", "X": "1"}}
    )
    client.force_login(admin_user)
    url = reverse("admin:deployments_deployment_change", args=[deployment.pk])

    page = client.get(url).content.decode()
    assert "s3cr3t-v4lue" not in page
    assert f"app.DJANGO_SECRET_KEY={SECRET_MASK}" in page

    data = {
        "name": "prod",
        "branch": "main",
        "size": "small",
        "enabled": "on",
        "env_overrides": f"app.DJANGO_SECRET_KEY={SECRET_MASK}\napp.X=2",
        "custom_domains": "",
        "image_overrides": "{}",
    }
    assert client.post(url, data).status_code == 302
    assert Deployment.objects.get(pk=deployment.pk).env_overrides == {
        "app": {"DJANGO_SECRET_KEY": "s3cr3t-v4lue", "X": "2"}
    }


def manifests(*args) -> str:
    out = io.StringIO()
    call_command("manifests", *args, stdout=out)
    return out.getvalue()


def test_the_manifests_command_hides_secrets_unless_asked_and_audits_showing_them(deployment):
    value = resolved(deployment)["DJANGO_SECRET_KEY"]

    hidden = manifests(str(deployment.pk))
    assert value not in hidden and "DJANGO_SECRET_KEY: <hidden>" in hidden
    assert not ActivityEntry.objects.filter(action="secret.printed").exists()

    shown = manifests(str(deployment.pk), "--show-secrets")
    assert base64.b64encode(value.encode()).decode() in shown
    assert ActivityEntry.objects.get(action="secret.printed").deployment_id == deployment.pk
