"""Keys made by asyncssh (a real SSH library) and deployments that SSH can enter."""

from __future__ import annotations

import asyncssh
import pytest

from deployments import services
from deployments.cluster import labels
from deployments.models import Deployment, DeploymentState
from deployments.ssh.access import Target


def target_for(user, deployment, component: str = "app") -> Target:
    """A Target as `authorize` would give it, for tests about what happens after authorization."""
    return Target(
        user_id=user.pk,
        username=user.username,
        key_fingerprint="SHA256:test",
        deployment_id=deployment.pk,
        component=component,
        namespace=deployment.namespace,
        pod_selector=labels.service_selector(deployment.pk, component),
        container=component,
        workdir="",
        replica=None,
    )


def public_line(key: asyncssh.SSHKey, comment: str = "me@laptop") -> str:
    key.set_comment(comment)
    return key.export_public_key("openssh").decode().strip()


@pytest.fixture
def make_key():
    """A fresh private key of the given algorithm (``ssh-ed25519`` by default)."""

    def make(algorithm: str = "ssh-ed25519", **options) -> asyncssh.SSHKey:
        return asyncssh.generate_private_key(algorithm, **options)

    return make


@pytest.fixture
def make_deployment(make_project, developer):
    """A live deployment the cluster has applied (as the worker would have marked it)."""

    def make(*, stage: str = "development", name: str = "dev", project=None, template: str = "django-postgres"):
        project = project or make_project(template)
        deployment = services.deployment_create(project=project, name=name, stage=stage, actor=developer)
        Deployment.objects.filter(pk=deployment.pk).update(applied_generation=1, state=DeploymentState.RUNNING)
        deployment.refresh_from_db()
        return deployment

    return make
