"""The project settings page's Builds section: who sees and manages what, and secrets shown once."""

from __future__ import annotations

import re

import pytest
import yaml
from django.urls import reverse

from deployments.ci.models import BuildToken, DeployKey, WebhookSecret
from deployments.ci.sealing import token_digest
from deployments.ci.services import project_for_build_token
from deployments.models import ActivityEntry, Project


def settings_page(client, project):
    return client.get(reverse("project_settings", args=[project.pk]))


def test_it_creates_a_build_token_shows_it_once_and_keeps_only_its_hash(admin_client, project):
    response = admin_client.post(reverse("ci_build_token", args=[project.pk]), {"action": "rotate"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = re.search(r'<code class="revealed">(dpl_[^<]+)</code>', response.content.decode()).group(1)
    stored = BuildToken.objects.get(project=project)
    assert stored.digest == token_digest(token)
    assert token not in str(list(BuildToken.objects.values()))
    assert project_for_build_token(token) == project
    again = settings_page(admin_client, project).content.decode()
    assert token not in again and stored.hint in again
    assert not ActivityEntry.objects.filter(message__contains=token).exists()


def test_rotating_the_build_token_revokes_the_old_one(admin_client, project):
    url = reverse("ci_build_token", args=[project.pk])
    first = re.search(r"(dpl_[\w-]+)", admin_client.post(url, {"action": "rotate"}).content.decode()).group(1)
    second = re.search(r"(dpl_[\w-]+)", admin_client.post(url, {"action": "rotate"}).content.decode()).group(1)

    assert first != second
    assert project_for_build_token(first) is None
    assert project_for_build_token(second) == project
    admin_client.post(url, {"action": "revoke"})
    assert project_for_build_token(second) is None
    assert list(ActivityEntry.objects.filter(project=project).values_list("action", flat=True)) == [
        "ci.build_token_revoked",
        "ci.build_token_rotated",
        "ci.build_token_created",
    ]


def test_the_webhook_secret_is_shown_once_and_stored_sealed(admin_client, project):
    response = admin_client.post(reverse("ci_webhook_secret", args=[project.pk]), {"action": "rotate"})

    secret = re.search(r'<code class="revealed">([^<]+)</code>', response.content.decode()).group(1)
    row = WebhookSecret.objects.get(project=project)
    assert secret not in row.sealed
    assert secret not in settings_page(admin_client, project).content.decode()


def test_a_developer_sees_the_section_but_cannot_manage_secrets(team_developer_client, project, admin_client):
    admin_client.post(reverse("ci_build_token", args=[project.pk]), {"action": "rotate"})
    page = settings_page(team_developer_client, project)

    assert page.status_code == 200
    body = page.content.decode()
    assert "A token" in body and "Rotate token" not in body
    for name in ("ci_build_token", "ci_webhook_secret", "ci_deploy_key", "ci_build_runner"):
        response = team_developer_client.post(reverse(name, args=[project.pk]), {"action": "rotate"})
        assert response.status_code == 403, name
    assert BuildToken.objects.filter(project=project).count() == 1


def test_a_viewer_cannot_see_or_manage_tokens(viewer_client, project):
    assert settings_page(viewer_client, project).status_code == 403
    assert viewer_client.get(reverse("ci_workflow", args=[project.pk])).status_code == 403
    for name, action in (("ci_build_token", "rotate"), ("ci_webhook_secret", "rotate"), ("ci_deploy_key", "generate")):
        assert viewer_client.post(reverse(name, args=[project.pk]), {"action": action}).status_code == 403
    assert not BuildToken.objects.exists() and not WebhookSecret.objects.exists() and not DeployKey.objects.exists()


def test_another_team_gets_404(make_member, make_user, project):
    from django.test import Client

    from deployments.models import Membership, Role, Team

    outsider = make_user()
    Membership.objects.create(team=Team.objects.create(name="Other", slug="other"), user=outsider, role=Role.ADMIN)
    client = Client()
    client.force_login(outsider)
    assert client.post(reverse("ci_build_token", args=[project.pk]), {"action": "rotate"}).status_code == 404
    assert not BuildToken.objects.exists()


def test_an_unknown_action_is_a_clear_400(admin_client, project):
    response = admin_client.post(reverse("ci_build_token", args=[project.pk]), {"action": "steal"})
    assert response.status_code == 400 and "Unknown action." in response.content.decode()


def test_the_admin_chooses_the_build_runner(admin_client, project, settings):
    settings.BUILD_RUNNER = "cluster"
    assert Project.objects.get(pk=project.pk).effective_build_runner == "cluster"

    response = admin_client.post(reverse("ci_build_runner", args=[project.pk]), {"build_runner": "external"})
    assert response.status_code == 200
    assert Project.objects.get(pk=project.pk).effective_build_runner == "external"
    bad = admin_client.post(reverse("ci_build_runner", args=[project.pk]), {"build_runner": "jenkins"})
    assert bad.status_code == 400 and "Choose one of" in bad.content.decode()
    assert Project.objects.get(pk=project.pk).build_runner == "external"
    admin_client.post(reverse("ci_build_runner", args=[project.pk]), {"build_runner": ""})
    assert Project.objects.get(pk=project.pk).effective_build_runner == "cluster"


def test_it_generates_a_deploy_key_and_shows_only_its_public_half(admin_client, team_developer_client, project):
    admin_client.post(reverse("ci_deploy_key", args=[project.pk]), {"action": "generate"})

    key = DeployKey.objects.get(project=project)
    assert key.public_key.startswith("ssh-ed25519 ") and key.public_key.endswith(" diploi-shop")
    assert key.fingerprint.startswith("SHA256:")
    body = settings_page(team_developer_client, project).content.decode()
    assert key.public_key in body
    assert "PRIVATE KEY" not in body and "PRIVATE KEY" not in key.sealed_private_key


@pytest.mark.parametrize("template", ["django-postgres", "fastapi-redis", "nextjs-postgres", "static-nginx"])
def test_the_offered_workflow_is_the_downloadable_one(make_project, team_developer_client, template, settings):
    settings.PUBLIC_URL = "https://diploi.example.com"
    project = make_project(template)
    download = team_developer_client.get(reverse("ci_workflow", args=[project.pk]))

    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="diploi.yml"'
    workflow = yaml.safe_load(download.content)
    assert workflow["jobs"]["build"]["env"]["DIPLOI_API"] == "https://diploi.example.com/api/v1"
    assert "docker/build-push-action@v6" in settings_page(team_developer_client, project).content.decode()
