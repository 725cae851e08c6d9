"""Removing an add-on removes what the app imported from it (issue 15, item 15): from the Options
tab, the app's env Secret and `manifests`, and the app's pods restart with the new environment."""

from __future__ import annotations

import base64
import io

import yaml
from django.core.management import call_command
from django.urls import reverse

from deployments import services
from deployments.cluster import labels as L
from deployments.cluster.connection import cluster_settings
from deployments.cluster.manifests import render
from deployments.models import Deployment


def app_objects(deployment):
    objects = render(Deployment.objects.get(pk=deployment.pk).render_target(), cluster_settings())
    secret = next(o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "api-env")
    workload = next(o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "api")
    return secret, workload["spec"]["template"]["metadata"]["annotations"][L.ENV_CHECKSUM_ANNOTATION]


def test_removing_redis_drops_its_imports_and_restarts_the_app(make_project, developer, client):
    deployment = services.deployment_create(
        project=make_project("fastapi-redis"), name="dev", stage="development", actor=developer, addons=["redis"]
    )
    secret, checksum_before = app_objects(deployment)
    assert "REDIS_URL" in secret["data"]

    services.deployment_update(deployment=deployment, actor=developer, addons=[])

    secret, checksum_after = app_objects(deployment)
    assert "REDIS_URL" not in secret["data"]
    assert checksum_after != checksum_before  # a new pod template: the app's pods restart
    client.force_login(developer)
    page = client.get(reverse("deployment_options", args=[deployment.pk])).content.decode()
    assert "REDIS_URL" not in page and "REDIS_PASSWORD" not in page
    out = io.StringIO()
    call_command("manifests", str(deployment.pk), "--show-secrets", stdout=out)
    printed = list(yaml.safe_load_all(out.getvalue()))
    api_env = next(o for o in printed if o["kind"] == "Secret" and o["metadata"]["name"] == "api-env")
    assert "REDIS_URL" not in api_env["data"]
    assert base64.b64decode(api_env["data"]["LOG_LEVEL"]) == b"debug"
