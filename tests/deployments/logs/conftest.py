"""A deployment applied to the emulator, with its component's pods running."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest

from deployments.cluster import labels
from deployments.cluster.connection import get_cluster
from deployments.models import Deployment
from templates_catalog.models import TemplateVersion
from tests.support import applied_deployment, wait_for


@dataclass
class Running:
    deployment: object
    component: str

    def pods(self) -> list[dict]:
        selector = labels.service_selector(self.deployment.pk, self.component)
        pods, _ = get_cluster().list(
            "Pod",
            namespace=self.deployment.namespace,
            label_selector=",".join(f"{key}={value}" for key, value in sorted(selector.items())),
        )
        return sorted(pods, key=lambda pod: pod["metadata"]["name"])

    def running_pods(self) -> list[str]:
        return [p["metadata"]["name"] for p in self.pods() if (p.get("status") or {}).get("phase") == "Running"]

    def restarts(self, pod: str) -> int:
        found = get_cluster().get("Pod", pod, self.deployment.namespace) or {}
        return sum(c.get("restartCount", 0) for c in (found.get("status") or {}).get("containerStatuses") or [])


@pytest.fixture
def running(emulator, make_project, developer):
    """Create a deployment, apply it as the worker does, and wait until its first component runs."""

    def make(*, template: str = "django-postgres", stage: str = "development", name: str = "dev", project=None):
        deployment = applied_deployment(
            project=project or make_project(template), actor=developer, stage=stage, name=name
        )
        found = Running(deployment=deployment, component=deployment.spec.components[0].id)
        wait_for(found.running_pods, timeout=30, what=f"a running pod of {found.component}")
        return found

    return make


def with_log_source(deployment, **source) -> None:
    """Move the deployment to a new version of its template with one more named log source (as an edit
    of the template file would make; a version's content never changes)."""
    current = Deployment.objects.get(pk=deployment.pk).template_version
    data = dict(current.spec_data)
    data["logs"] = [*data["logs"], source]
    version = TemplateVersion.objects.create(
        template=current.template, version=current.version, digest=secrets.token_hex(32), spec_data=data, source=""
    )
    Deployment.objects.filter(pk=deployment.pk).update(template_version=version)
