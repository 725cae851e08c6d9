"""A development deployment of django-postgres applied to the emulator, its app running, with test
actions added to its template version (the shipped ones stay: "Apply migrations" among them)."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest

from deployments import lifecycle, services
from deployments.leases import LeaseBusy
from deployments.ssh.gateway.pods import is_ready
from templates_catalog.models import TemplateVersion
from tests.deployments.logs.conftest import Running
from tests.support import wait_for

PID_SCRIPT = "import os, time; print('pid', os.getpid(), flush=True); time.sleep(300)"
DEAF_SCRIPT = (  # a command that ignores SIGTERM: only the SIGKILL after the grace stops it
    "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('pid', os.getpid(), flush=True); time.sleep(300)"
)

TEST_ACTIONS = [
    {
        "name": "Say hello",
        "component": "app",
        "command": ["sh", "-c", "echo to stdout; echo to stderr >&2; printf 'nul:\\000.\\n'; exit 3"],
        "stages": ["development"],
    },
    {"name": "Sleep", "component": "app", "command": ["python3", "-c", PID_SCRIPT], "stages": ["development"]},
    {"name": "Sleep deaf", "component": "app", "command": ["python3", "-c", DEAF_SCRIPT], "stages": ["development"]},
    {
        "name": "Sleep briefly",
        "component": "app",
        "command": ["python3", "-c", PID_SCRIPT],
        "stages": ["development"],
        "timeout_seconds": 2,
    },
    {
        "name": "Chatter",
        "component": "app",
        "command": ["sh", "-c", 'i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done'],
        "stages": ["development"],
    },
    {
        "name": "Drop everything",
        "component": "app",
        "command": ["sh", "-c", "echo dropped"],
        "stages": ["development"],
        "confirm": ["development"],
    },
]


def with_test_actions(deployment) -> None:
    """Point ``deployment`` at a copy of its template version carrying TEST_ACTIONS too."""
    version = deployment.template_version
    data = copy.deepcopy(version.spec_data)
    data["actions"] = data["actions"] + TEST_ACTIONS
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    extended, _ = TemplateVersion.objects.get_or_create(
        template=version.template,
        digest=digest,
        defaults={"version": version.version + "+actions", "spec_data": data, "source": ""},
    )
    type(deployment).objects.filter(pk=deployment.pk).update(template_version=extended)
    deployment.refresh_from_db()


@pytest.fixture
def acting(emulator, make_project, developer):
    """Make a running development deployment with the test actions."""

    def make(*, name: str = "dev", project=None) -> Running:
        deployment = services.deployment_create(
            project=project or make_project(), name=name, stage="development", actor=developer
        )

        def applied():
            try:
                lifecycle.reconcile_run(deployment.pk, owner="test")
            except LeaseBusy:  # a worker of the test took the create's task: it applies it
                pass
            return type(deployment).objects.get(pk=deployment.pk).applied_generation

        wait_for(applied, timeout=30, what="the deployment applied")
        with_test_actions(deployment)
        found = Running(deployment=deployment, component="app")
        wait_for(lambda: [p for p in found.pods() if is_ready(p)], timeout=30, what="a ready pod of app")
        return found

    return make
