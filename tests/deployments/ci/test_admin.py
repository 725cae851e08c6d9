"""The operators' admin lists the build secrets without their values and revokes them, audited."""

from __future__ import annotations

import pytest
from django.test import Client

from deployments.ci import services
from deployments.ci.models import BuildToken, DeployKey, RepositoryToken, WebhookSecret
from deployments.ci.sealing import unseal
from deployments.models import ActivityEntry


@pytest.fixture
def superuser_client(make_user):
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def test_the_admin_shows_no_secret_and_revokes_through_the_services(superuser_client, project, admin_member):
    token = services.build_token_rotate(project=project, actor=admin_member)
    secret = services.webhook_secret_rotate(project=project, actor=admin_member)
    key = services.deploy_key_generate(project=project, actor=admin_member)
    private = unseal(key.sealed_private_key).splitlines()[1]
    https = services.repository_token_set(
        project=project, token="ghp_repositoryToken1", username="", actor=admin_member
    )

    for model, row in (("buildtoken", None), ("webhooksecret", None), ("deploykey", key), ("repositorytoken", https)):
        listing = superuser_client.get(f"/admin/ci/{model}/")
        assert listing.status_code == 200
        pages = [listing.content.decode()]
        if row is not None:
            pages.append(superuser_client.get(f"/admin/ci/{model}/{row.pk}/change/").content.decode())
        for page in pages:
            assert token not in page and secret not in page and private not in page
            assert "ghp_repositoryToken1" not in page
            assert WebhookSecret.objects.get(project=project).sealed not in page

    response = superuser_client.post(
        "/admin/ci/buildtoken/",
        {"action": "revoke_selected", "_selected_action": [BuildToken.objects.get(project=project).pk]},
    )
    assert response.status_code == 302
    assert not BuildToken.objects.exists()
    assert services.project_for_build_token(token) is None
    assert ActivityEntry.objects.filter(project=project, action="ci.build_token_revoked").exists()
    superuser_client.post("/admin/ci/deploykey/", {"action": "revoke_selected", "_selected_action": [key.pk]})
    assert not DeployKey.objects.exists()
    superuser_client.post("/admin/ci/repositorytoken/", {"action": "revoke_selected", "_selected_action": [https.pk]})
    assert not RepositoryToken.objects.exists()
    assert ActivityEntry.objects.filter(project=project, action="ci.repository_token_deleted").exists()
