"""The Celery tasks with a real worker (a separate process on Redis in CI) and the emulator."""

import os

import pytest

from deployments import services
from deployments.cluster.connection import get_cluster
from deployments.models import Deployment, DeploymentState, Operation
from tests.conftest import need_service
from tests.support import observed_until_done, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def applied(deployment) -> bool:
    current = Deployment.objects.get(pk=deployment.pk)
    return current.applied_generation >= current.desired_generation > 0


def test_it_creates_the_deployment_in_the_cluster_after_the_request_returns(worker, make_project, developer):
    deployment = services.deployment_create(
        project=make_project(), name="feature-x", stage="development", actor=developer
    )
    assert Deployment.objects.get(pk=deployment.pk).applied_generation == 0  # the service only enqueued
    wait_for(lambda: applied(deployment), timeout=30, what="the worker to apply it")
    operation = observed_until_done(deployment.operations.get())
    assert operation.status == Operation.Status.SUCCEEDED
    assert get_cluster().get("StatefulSet", "app", deployment.namespace) is not None


def test_it_retries_while_the_cluster_is_down_and_converges_when_it_returns(worker, make_project, developer, emulator):
    emulator.take_down()
    deployment = services.deployment_create(
        project=make_project(), name="feature-x", stage="development", actor=developer
    )

    def retrying():
        operation = deployment.operations.get()
        return operation.status == Operation.Status.RUNNING and "retrying" in operation.message and operation

    operation = wait_for(retrying, timeout=30, what="a retry")
    assert "cannot be reached" in operation.message
    emulator.bring_up()
    wait_for(lambda: applied(deployment), timeout=60, what="convergence after the API returned")
    operation = observed_until_done(deployment.operations.get())
    assert operation.status == Operation.Status.SUCCEEDED
    assert operation.attempts > 1  # real retries, each counted


def test_it_waits_as_long_as_a_429_says_before_trying_again(worker, make_project, developer, emulator):
    import time

    emulator.faults.fail_requests(status=429, count=1, retry_after=4, methods="PATCH")
    deployment = services.deployment_create(
        project=make_project(), name="feature-x", stage="development", actor=developer
    )
    wait_for(lambda: applied(deployment), timeout=30, what="the deployment to be applied")
    applied_at = time.monotonic()
    (throttled,) = emulator.faults.answered()
    # Backoff alone would have tried again after 1-2 s.
    assert applied_at - throttled.at >= 4
    operation = observed_until_done(deployment.operations.get())  # done once the cluster shows it
    assert (operation.status, operation.attempts) == (Operation.Status.SUCCEEDED, 2)


def test_it_deletes_through_the_task_until_the_cluster_confirms(worker, make_project, developer):
    deployment = services.deployment_create(
        project=make_project(), name="feature-x", stage="development", actor=developer
    )
    wait_for(lambda: applied(deployment), timeout=30, what="applied")
    services.deployment_delete(deployment=deployment, actor=developer)
    wait_for(
        lambda: Deployment.objects.get(pk=deployment.pk).state == DeploymentState.DELETED, timeout=30, what="deleted"
    )
    assert get_cluster().get("Namespace", deployment.namespace) is None
    assert get_cluster().list("PersistentVolumeClaim", label_selector=f"diploi.io/deployment={deployment.pk}")[0] == []


def test_it_converges_after_the_worker_is_killed_in_the_middle_of_a_reconcile(
    transactional_db, emulator, make_project, developer, tmp_path, settings
):
    if not os.environ.get("REDIS_URL"):
        need_service("killing a worker process needs the Redis broker (set REDIS_URL; CI does)")
    from diploi_site.celery import app as celery_app
    from tests.stack import DiploiProcess

    celery_app.control.purge()
    # Redelivered 3 s after the kill (at the next check for unacknowledged messages, every 10 s);
    # the dead worker's lease lapses 5 s after its last renewal (15 s by default).
    fast = {"CELERY_VISIBILITY_TIMEOUT": "3", "DEPLOYMENT_LEASE_SECONDS": "5"}
    first = DiploiProcess.worker(kube_api_url=emulator.url, log=tmp_path / "worker1.log", env=fast).start()
    emulator.faults.hang(30, path_contains="/statefulsets/")  # the reconcile stalls mid-apply
    deployment = services.deployment_create(
        project=make_project(), name="feature-x", stage="development", actor=developer
    )
    wait_for(lambda: Deployment.objects.get(pk=deployment.pk).lease_owner, timeout=30, what="the reconcile to start")
    first.kill()
    emulator.faults.clear()
    assert not applied(deployment)

    second = DiploiProcess.worker(kube_api_url=emulator.url, log=tmp_path / "worker2.log", env=fast).start()
    try:
        wait_for(lambda: applied(deployment), timeout=90, what="the redelivered task to converge")
    finally:
        second.stop()
    assert observed_until_done(deployment.operations.get()).status == Operation.Status.SUCCEEDED
