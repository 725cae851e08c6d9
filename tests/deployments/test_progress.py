"""Operations end when their effect is real: the worker's apply, then the watcher's view of the
cluster (`statuses.status_store`, as the watcher calls it) against the emulator."""

import pytest

from deployments import lifecycle, progress, services
from deployments.models import ActivityEntry, Deployment, DeploymentStatus, Operation
from tests.support import observe, observed_until_done, wait_for


@pytest.fixture
def deployment(emulator, make_project, developer):
    deployment = services.deployment_create(
        project=make_project("django-postgres"), name="feature-x", stage="development", actor=developer
    )
    assert lifecycle.reconcile_run(deployment.pk, owner="test") == "applied"
    assert observed_until_done(deployment.operations.get()).status == Operation.Status.SUCCEEDED
    return Deployment.objects.get(pk=deployment.pk)


def test_a_restart_succeeds_only_once_the_rollout_completed(deployment, developer):
    operation = services.deployment_restart(deployment=deployment, actor=developer, service_id="app")
    assert lifecycle.reconcile_run(deployment.pk, owner="test") == "applied"
    operation.refresh_from_db()
    assert (operation.status, operation.message) == (
        Operation.Status.RUNNING,
        operation.message.split(";")[0] + "; waiting for the rollout",
    )
    seen = []

    def ended():
        health = observe(deployment)
        current = Operation.objects.get(pk=operation.pk)
        tree = DeploymentStatus.objects.get(deployment=deployment).tree
        seen.append((health, current.status, tree["reason"]))
        return not current.is_active

    wait_for(ended, timeout=30, interval=0.05, what="the restart to end")
    healths = [health for health, _, _ in seen]
    assert "red" not in healths and "yellow" not in healths
    assert "progress" in healths  # the rollout was seen under way ...
    running = [reason for health, status, reason in seen if status == Operation.Status.RUNNING]
    assert any(reason.startswith("Restarting Django, asked by ") for reason in running)
    # ... and the operation succeeded only with the rollout complete.
    assert seen[-1][:2] == ("green", Operation.Status.SUCCEEDED)
    operation.refresh_from_db()
    assert operation.message == "Restarted: every pod was replaced and the new ones are ready"
    assert operation.attempts == 1
    assert ActivityEntry.objects.filter(deployment=deployment, action="restart.done").exists()


def test_a_change_that_crash_loops_fails_with_the_clusters_reason_after_the_timeout(
    deployment, developer, emulator, settings
):
    settings.OPERATION_TIMEOUT_SECONDS = 3
    settings.STATUS_GRACE_SECONDS = 1
    emulator.faults.crash(deployment.namespace, {"diploi.io/service": "app"}, containers=["app"])
    services.deployment_update(deployment=deployment, actor=developer, env_overrides={"app": {"DEBUG": "0"}})
    assert lifecycle.reconcile_run(deployment.pk, owner="test") == "applied"
    operation = deployment.operations.get(kind=Operation.Kind.RECONCILE)

    def crash_looping():
        observe(deployment)
        current = Operation.objects.get(pk=operation.pk)
        return "CrashLoopBackOff" in current.message and current

    running = wait_for(crash_looping, timeout=20, interval=0.1, what="the operation to say it crash-loops")
    assert running.status == Operation.Status.RUNNING  # not failed before the timeout
    assert running.message.startswith("Applied; waiting for the cluster: app: CrashLoopBackOff")

    # The watcher's periodic pass ends it even when the status no longer changes.
    wait_for(lambda: progress.operations_sweep() or not Operation.objects.get(pk=operation.pk).is_active, timeout=20)
    operation.refresh_from_db()
    assert operation.status == Operation.Status.FAILED
    assert operation.message.startswith("Did not take effect within 3 s: app: CrashLoopBackOff")
    failed = ActivityEntry.objects.get(deployment=deployment, action="reconcile.failed")
    assert "CrashLoopBackOff" in failed.message


def test_a_disable_succeeds_once_nothing_runs(deployment, developer):
    services.deployment_update(deployment=deployment, actor=developer, enabled=False)
    assert lifecycle.reconcile_run(deployment.pk, owner="test") == "applied"
    operation = observed_until_done(deployment.operations.get(kind=Operation.Kind.RECONCILE))
    assert (operation.status, operation.message) == (Operation.Status.SUCCEEDED, "Disabled: nothing runs any more")
    assert observe(deployment) == "disabled"


def test_a_delete_counts_its_polling_as_one_attempt(deployment, developer):
    operation = services.deployment_delete(deployment=deployment, actor=developer)
    polls = 0
    while True:
        try:
            assert lifecycle.delete_run(operation.pk, owner="task", attempt=polls + 1) == "deleted"
            break
        except lifecycle.StillDeleting:
            polls += 1
            observe(deployment)
            assert observe(deployment) != "red"
    operation.refresh_from_db()
    assert polls >= 1 and operation.attempts == 1
    assert operation.status == Operation.Status.SUCCEEDED


def test_the_timeout_counts_from_the_apply_and_never_while_the_cluster_cannot_be_seen(
    emulator, make_project, developer
):
    from datetime import timedelta

    from django.utils import timezone

    deployment = services.deployment_create(
        project=make_project("django-postgres"), name="feature-y", stage="development", actor=developer
    )
    operation = deployment.operations.get()
    Operation.objects.filter(pk=operation.pk).update(requested_at=timezone.now() - timedelta(hours=1))
    assert lifecycle.reconcile_run(deployment.pk, owner="test") == "applied"
    # Asked an hour ago (its apply may have waited out an outage), applied just now: not late.
    assert progress.operations_settle(deployment.pk, {"health": "red", "reason": "app: CrashLoopBackOff"}) == 0
    Operation.objects.filter(pk=operation.pk).update(applied_at=timezone.now() - timedelta(hours=1))
    unknown = {"health": "unknown", "reason": "Cluster not reachable since 12:00:00 UTC: connection refused"}
    assert progress.operations_settle(deployment.pk, unknown) == 0  # the cluster cannot be seen: no verdict
    assert Operation.objects.get(pk=operation.pk).is_active
    assert progress.operations_settle(deployment.pk, {"health": "red", "reason": "app: CrashLoopBackOff"}) == 1
    operation.refresh_from_db()
    assert operation.status == Operation.Status.FAILED
    assert operation.message == "Did not take effect within 10 min: app: CrashLoopBackOff"
