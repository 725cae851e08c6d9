"""The worker side, called directly (the tasks only wrap these), against the emulator."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from deployments import lifecycle, services
from deployments.cluster import errors
from deployments.cluster import labels as L
from deployments.cluster.connection import get_cluster
from deployments.models import ActivityEntry, Deployment, DeploymentState, Operation
from tests.support import observed_until_done, versions_a_noop_apply_keeps, wait_for


@pytest.fixture
def deployment(emulator, make_project, developer):
    project = make_project("fastapi-redis")
    return services.deployment_create(
        project=project, name="feature-x", stage="development", actor=developer, addons=["redis"]
    )


def reconcile(deployment, owner="task-1"):
    return lifecycle.reconcile_run(deployment.pk, owner=owner)


def test_it_applies_the_deployment_and_records_it(deployment):
    assert reconcile(deployment) == "applied"
    deployment.refresh_from_db()
    assert deployment.applied_generation == deployment.desired_generation == 1
    assert deployment.state == DeploymentState.RUNNING
    assert deployment.lease_owner == ""
    operation = deployment.operations.get()
    # Applied, not done: done once the cluster shows every service ready.
    assert (operation.kind, operation.status, operation.attempts) == (Operation.Kind.CREATE, "running", 1)
    assert operation.message == "Applied 14 objects to the cluster; waiting for the rollout"
    assert operation.due_at is None  # no task is due: the sweeper leaves it alone
    operation = observed_until_done(operation)
    assert (operation.status, operation.message) == (Operation.Status.SUCCEEDED, "Created: every service is ready")
    cluster = get_cluster()
    assert cluster.get("StatefulSet", "api", deployment.namespace)["metadata"]["labels"][L.DEPLOYMENT] == str(
        deployment.pk
    )
    assert cluster.get("StatefulSet", "redis", deployment.namespace) is not None


def test_it_is_safe_to_run_twice(deployment):
    reconcile(deployment)
    before = versions_a_noop_apply_keeps(get_cluster(), deployment.namespace)
    assert reconcile(deployment, owner="task-2") == "applied"
    assert versions_a_noop_apply_keeps(get_cluster(), deployment.namespace) == before


def test_it_waits_for_another_worker_holding_the_lease(deployment):
    Deployment.objects.filter(pk=deployment.pk).update(
        lease_owner="other", lease_until=timezone.now() + timedelta(minutes=1)
    )
    with pytest.raises(lifecycle.LeaseBusy):
        reconcile(deployment)
    # An expired lease (its worker died) is taken over.
    Deployment.objects.filter(pk=deployment.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert reconcile(deployment) == "applied"


@pytest.mark.django_db(transaction=True)
def test_it_reconciles_again_when_the_desired_state_changed_meanwhile(deployment, emulator, developer):
    emulator.faults.hang(0.6, path_contains="/statefulsets/")
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("result", reconcile(deployment)))
    worker.start()
    wait_for(lambda: Deployment.objects.get(pk=deployment.pk).lease_owner, what="the reconcile to start")
    services.deployment_update(deployment=deployment, actor=developer, env_overrides={"api": {"LOG_LEVEL": "debug"}})
    worker.join(10)
    assert outcome["result"] == "again"
    emulator.faults.clear()
    assert reconcile(deployment, owner="task-2") == "applied"
    assert Deployment.objects.get(pk=deployment.pk).applied_generation == 2


def test_it_leaves_temporary_errors_to_the_retry_and_says_so(deployment, emulator):
    emulator.faults.fail_requests(status=503, count=1)
    with pytest.raises(errors.ClusterUnavailable):
        reconcile(deployment)
    operation = deployment.operations.get()
    assert operation.status == Operation.Status.RUNNING
    assert operation.message.startswith("Attempt 1 failed, retrying: The Kubernetes API is unavailable (503)")
    assert Deployment.objects.get(pk=deployment.pk).lease_owner == ""


def test_it_fails_the_operation_with_the_servers_message_on_permanent_errors(deployment, emulator):
    emulator.faults.fail_requests(status=403, count=1)
    assert reconcile(deployment) == "failed"
    operation = deployment.operations.get()
    assert operation.status == Operation.Status.FAILED
    assert "refused Diploi's credentials" in operation.message
    assert Deployment.objects.get(pk=deployment.pk).state == DeploymentState.FAILED
    assert ActivityEntry.objects.filter(deployment=deployment, action="deployment.apply_failed").exists()


def test_it_restarts_one_service_through_the_desired_state(deployment, developer):
    reconcile(deployment)
    operation = services.deployment_restart(deployment=deployment, actor=developer, service_id="api")
    assert Deployment.objects.get(pk=deployment.pk).state == DeploymentState.RESTARTING
    reconcile(deployment)
    operation.refresh_from_db()
    assert operation.status == Operation.Status.RUNNING
    operation = observed_until_done(operation)
    assert operation.status == Operation.Status.SUCCEEDED
    assert operation.message == "Restarted: every pod was replaced and the new ones are ready"
    annotations = get_cluster().get("StatefulSet", "api", deployment.namespace)["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert L.RESTARTED_AT_ANNOTATION in annotations
    assert Deployment.objects.get(pk=deployment.pk).state == DeploymentState.RUNNING


def test_it_deletes_and_ends_only_when_the_cluster_confirms(deployment, developer):
    reconcile(deployment)
    wait_for(lambda: get_cluster().list("PersistentVolumeClaim", namespace=deployment.namespace)[0], what="claims")
    operation = services.deployment_delete(deployment=deployment, actor=developer)
    assert Deployment.objects.get(pk=deployment.pk).state == DeploymentState.DELETING
    with pytest.raises(lifecycle.StillDeleting):
        lifecycle.delete_run(operation.pk, owner="task-9")
    operation.refresh_from_db()
    assert "code-api-0 (3Gi)" in operation.message and "data-redis-0 (1Gi)" in operation.message

    def finished():
        try:
            return lifecycle.delete_run(operation.pk, owner="task-9")
        except lifecycle.StillDeleting:
            return None

    assert wait_for(finished, timeout=15, what="the delete to finish") == "deleted"
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.DELETED and deployment.deleted_at
    assert Deployment.objects.live().filter(pk=deployment.pk).count() == 0
    assert get_cluster().get("Namespace", deployment.namespace) is None
    operation.refresh_from_db()
    assert operation.status == Operation.Status.SUCCEEDED and operation.message.startswith("Deleted namespace")
    assert lifecycle.delete_run(operation.pk, owner="task-10") == Operation.Status.SUCCEEDED
    assert reconcile(deployment) == "skipped"


def test_a_deletion_ends_what_was_still_asked_of_the_deployment(deployment, developer):
    restart = services.deployment_restart(deployment=deployment, actor=developer)
    delete = services.deployment_delete(deployment=deployment, actor=developer)
    assert reconcile(deployment) == "skipped"  # deleting: nothing is applied any more
    wait_for(lambda: _deleted(delete), timeout=15, what="the delete to finish")
    left = {(op.kind, op.status, op.message) for op in deployment.operations.exclude(pk=delete.pk)}
    assert left == {
        (Operation.Kind.CREATE, Operation.Status.FAILED, "Not applied: the deployment was deleted"),
        (restart.kind, Operation.Status.FAILED, "Not applied: the deployment was deleted"),
    }


def _deleted(operation) -> bool:
    try:
        return lifecycle.delete_run(operation.pk, owner="task-9") == "deleted"
    except lifecycle.StillDeleting:
        return False


def test_it_deletes_a_removed_addons_storage_only_when_asked(deployment, developer):
    reconcile(deployment)
    cluster = get_cluster()
    wait_for(lambda: cluster.get("PersistentVolumeClaim", "data-redis-0", deployment.namespace), what="redis claim")
    services.deployment_update(deployment=deployment, actor=developer, addons=[], delete_storage_of=["redis"])
    reconcile(deployment)
    assert cluster.get("StatefulSet", "redis", deployment.namespace) is None
    storage = deployment.operations.get(kind=Operation.Kind.DELETE_STORAGE)
    assert storage.target == "redis"

    def finished():
        try:
            return lifecycle.delete_storage_run(storage.pk, owner="task-3")
        except lifecycle.StillDeleting:
            return None

    assert wait_for(finished, timeout=15, what="the storage to go") == "deleted"
    assert cluster.get("PersistentVolumeClaim", "data-redis-0", deployment.namespace) is None
    assert cluster.get("PersistentVolumeClaim", "code-api-0", deployment.namespace) is not None
