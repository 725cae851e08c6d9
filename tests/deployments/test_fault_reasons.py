"""Each fault the emulator injects, as a real cluster reports it, reaches the status with a reason a
person can act on, within the grace period: the worker's apply and the watcher's observation
(`tests.support.observe`) against the emulator."""

import time

import pytest

from deployments import lifecycle, services
from deployments.models import DeploymentStatus
from tests.support import built, observe, wait_for

APP = {"diploi.io/service": "app"}


def inject_crash(emulator, namespace):
    emulator.faults.crash(namespace, APP, containers=["app"])


def inject_image_pull_error(emulator, namespace):
    emulator.faults.image_pull_error(namespace, APP, containers=["app"])


def inject_unschedulable(emulator, namespace):
    emulator.faults.unschedulable(namespace, APP, reason="1 Insufficient memory")


def inject_oom(emulator, namespace):
    emulator.faults.oom(namespace, APP, containers=["app"])


def inject_liveness_failure(emulator, namespace):
    emulator.faults.liveness_failure(namespace, APP, containers=["app"])


def inject_readiness_failure(emulator, namespace):
    emulator.faults.readiness_failure(namespace, APP, containers=["app"])


def inject_clone_failure(emulator, namespace):
    emulator.faults.crash(namespace, APP, exit_code=128, containers=["clone"])


@pytest.mark.parametrize(
    ("stage", "inject", "reason"),
    [
        ("development", inject_crash, "app: CrashLoopBackOff"),
        (
            "production",
            inject_image_pull_error,
            "app: ImagePullBackOff: the image registry refused the pull of",
        ),
        (
            "production",
            inject_unschedulable,
            "FailedScheduling: 0/1 nodes have enough memory: the Small size needs 512 MiB; "
            "pick a smaller size or ask your operator",
        ),
        ("development", inject_oom, "app: OOMKilled: used more than its 512 MiB limit"),
        ("development", inject_clone_failure, "Init: git clone failed: repository not found or no access"),
        (
            "development",
            inject_liveness_failure,
            "app: Liveness probe failed on :8000 for 60 s (HTTP probe failed with statuscode: 500), killed",
        ),
        (
            "production",
            inject_readiness_failure,
            "app: Readiness probe failed on :8000 for ",
        ),
    ],
    ids=["crash", "image-pull", "unschedulable", "oom", "clone", "liveness", "readiness"],
)
def test_a_fault_shows_its_reason_within_the_grace_period(
    emulator, make_project, developer, settings, stage, inject, reason
):
    settings.STATUS_GRACE_SECONDS = 3
    deployment = built(
        services.deployment_create(
            project=make_project("django-postgres"), name="feature-x", stage=stage, actor=developer
        )
    )
    inject(emulator, deployment.namespace)
    started = time.monotonic()
    assert lifecycle.reconcile_run(deployment.pk, owner="test") == "applied"

    def reported():
        health = observe(deployment)
        status = DeploymentStatus.objects.get(deployment=deployment)
        return health in ("yellow", "red") and reason in status.reason and status

    status = wait_for(reported, timeout=20, interval=0.1, what=f"the status to say {reason!r}")
    assert time.monotonic() - started < 15
    assert status.health in ("yellow", "red")
    # Past the grace period, with nothing serving the app, it is red, still with the reason.
    grace = settings.STATUS_GRACE_SECONDS
    wait_for(lambda: observe(deployment) == "red", timeout=grace + 10, what="red past the grace period")
    assert reason in DeploymentStatus.objects.get(deployment=deployment).reason
