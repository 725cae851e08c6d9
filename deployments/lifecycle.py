"""The worker side of a deployment's life: reconcile, delete, delete storage.

Each `*_run` function is what one Celery task execution does. They are safe
to run twice or concurrently: work on one deployment is serialized by a lease
on its row (`leases`: compare-and-set, renewed while the task works, expiring
soon after a worker dies), and every cluster call is idempotent. Temporary
failures raise for the task to retry with backoff; permanent ones are
recorded on the operation rows.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from deployments import events, progress
from deployments.cluster import errors
from deployments.cluster.connection import cluster_settings, get_cluster
from deployments.cluster.environment import EnvironmentError, missing_secrets
from deployments.cluster.manifests import ManifestError, render
from deployments.cluster.operations import apply_objects, claims_of, delete_claims, delete_namespace, leftovers
from deployments.hosts.services import release_hosts
from deployments.leases import LeaseBusy as LeaseBusy  # tasks catch lifecycle.LeaseBusy
from deployments.leases import LeaseLost, deployment_lease, still_holds
from deployments.models import ActivityEntry, Deployment, DeploymentState, Operation, record_activity
from diploi_site.logs import log_context

logger = logging.getLogger(__name__)

APPLY_KINDS = (Operation.Kind.CREATE, Operation.Kind.RECONCILE, Operation.Kind.RESTART)
ACTIVE = (Operation.Status.PENDING, Operation.Status.RUNNING)
SUPERSEDED_BY_DELETE = "Not applied: the deployment was deleted"  # what a change still queued at a delete says


class StillDeleting(Exception):
    """The cluster is still removing what was deleted; check again shortly."""


PERMANENT_ERRORS = (ManifestError, EnvironmentError)


def _active_operations(deployment: Deployment, kinds, generation: int | None = None):
    ops = Operation.objects.filter(deployment=deployment, kind__in=kinds, status__in=ACTIVE)
    return ops.filter(generation__lte=generation) if generation is not None else ops


# ----------------------------------------------------------------------------- reconcile


def reconcile_run(deployment_id: int, *, owner: str, attempt: int = 1) -> str:
    """Apply the deployment's desired state to the cluster and prune what is no longer wanted.

    Returns "applied", "skipped" or "again" (the desired state changed while
    applying: the caller enqueues another reconcile). Raises `LeaseBusy` and
    retryable `ClusterError`s for the task to retry; permanent errors are
    recorded on the operations and returned as "failed".
    """
    with deployment_lease(deployment_id, owner):
        deployment = (
            Deployment.objects.select_related("project__team", "template_version").filter(pk=deployment_id).first()
        )
        if deployment is None or deployment.state in (DeploymentState.DELETING, DeploymentState.DELETED):
            return "skipped"
        generation = deployment.desired_generation
        fresh = missing_secrets(deployment.spec, deployment.generated_secrets)
        if fresh:
            # A newer template version may bring new secrets: generate them once, keep them forever.
            deployment.generated_secrets = {**deployment.generated_secrets, **fresh}
            Deployment.objects.filter(pk=deployment.pk).update(generated_secrets=deployment.generated_secrets)
        # Those still to be applied: one more real attempt. Those applied before wait for the
        # cluster (`progress`): their start and attempts stay as they were.
        _to_apply(deployment, generation).update(
            status=Operation.Status.RUNNING,
            started_at=Coalesce(F("started_at"), Value(timezone.now())),
            attempts=F("attempts") + 1,
        )
        try:
            objects = render(deployment.render_target(with_credentials=True), cluster_settings())
            result = apply_objects(get_cluster(), objects, deployment_id=deployment.pk, notify=_recorder(deployment))
        except PERMANENT_ERRORS as error:
            _fail_apply(deployment, generation, str(error), permanent=True)
            return "failed"
        except errors.ClusterError as error:
            if error.retryable:
                for operation in _to_apply(deployment, generation).only("pk", "attempts"):
                    Operation.objects.filter(pk=operation.pk).update(
                        message=f"Attempt {operation.attempts} failed, retrying: {error}"
                    )
                raise
            _fail_apply(deployment, generation, str(error), permanent=True)
            return "failed"
        with transaction.atomic():
            if not still_holds(deployment.pk, owner):
                raise LeaseLost(f"deployment {deployment.pk}: another task took over while this one applied")
            Deployment.objects.filter(pk=deployment.pk, applied_generation__lt=generation).update(
                applied_generation=generation
            )
            Deployment.objects.filter(
                pk=deployment.pk,
                desired_generation=generation,
                state__in=(DeploymentState.CREATING, DeploymentState.RESTARTING, DeploymentState.FAILED),
            ).update(state=DeploymentState.RUNNING)
            pruned = f"; removed {', '.join(result.pruned)}" if result.pruned else ""
            pruned += f"; created again {', '.join(result.replaced)} (pods and volumes kept)" if result.replaced else ""
            # Not done yet: done once the cluster shows it (`progress`). No task is due for them any more.
            _to_apply(deployment, generation).update(
                due_at=None,
                applied_at=timezone.now(),
                message=f"Applied {len(result.applied)} objects to the cluster{pruned}; waiting for the rollout",
            )
            events.publish_deployment_changed(deployment)
    # The watcher may have seen the rollout complete before this commit: settle from what it stored.
    progress.operations_settle(deployment_id)
    latest = Deployment.objects.filter(pk=deployment_id).values_list("desired_generation", flat=True).first()
    return "again" if latest is not None and latest > generation else "applied"


def _recorder(deployment: Deployment):
    """Writes what the applier tells of a StatefulSet replacement to the Activity tab as it happens, one row
    per step (`operations.Notify`). A run interrupted after its delete leaves "replacing" as the last row
    for that StatefulSet: the next run's plain create of it is then the "replaced"."""

    def record(event: str, name: str, message: str) -> None:
        if event == "created":
            last = (
                ActivityEntry.objects.filter(
                    deployment=deployment, action__startswith="workload.", data__statefulset=name
                )
                .order_by("-pk")
                .values_list("action", flat=True)
                .first()
            )
            if last != "workload.replacing":
                return
            event = "replaced"
        with transaction.atomic():
            record_activity(action=f"workload.{event}", message=message, deployment=deployment, statefulset=name)

    return record


def _to_apply(deployment: Deployment, generation: int):
    """The active apply operations up to ``generation`` not applied yet (those applied wait for the cluster).
    ``deployment.applied_generation`` as loaded: before this task's apply."""
    return _active_operations(deployment, APPLY_KINDS, generation).filter(generation__gt=deployment.applied_generation)


def _fail_apply(deployment: Deployment, generation: int, message: str, *, permanent: bool = False) -> None:
    """Fail the apply operations up to ``generation`` not applied yet. ``permanent``: the cluster refused
    this desired state itself, so it is recorded on the deployment and the watcher's resync leaves it alone."""
    with transaction.atomic():
        _to_apply(deployment, generation).update(
            status=Operation.Status.FAILED, finished_at=timezone.now(), message=message
        )
        if permanent:
            Deployment.objects.filter(pk=deployment.pk).update(failed_generation=generation, failure_reason=message)
        Deployment.objects.filter(pk=deployment.pk, state=DeploymentState.CREATING).update(state=DeploymentState.FAILED)
        record_activity(
            action="deployment.apply_failed",
            message=f"Applying to the cluster failed: {message}",
            deployment=deployment,
        )
        events.publish_deployment_changed(deployment)
    logger.warning("reconcile of deployment %s failed: %s", deployment.pk, message)


def reconcile_gave_up(deployment_id: int, message: str) -> None:
    """The task ran out of retries: say so on the operations (a later reconcile may still succeed)."""
    deployment = Deployment.objects.select_related("project__team").filter(pk=deployment_id).first()
    if deployment is not None:
        _fail_apply(deployment, deployment.desired_generation, f"Gave up after repeated failures: {message}")


# ----------------------------------------------------------------------------- delete


def delete_run(operation_id: int, *, owner: str, attempt: int = 1) -> str:
    """Delete the deployment's namespace with everything in it, then confirm it is gone.

    Raises `StillDeleting` while the namespace or claims remain (the task checks
    again shortly); returns "deleted" once the cluster confirms, or "failed"
    after DELETE_TIMEOUT_SECONDS, naming what was left behind.
    """
    operation = Operation.objects.select_related("deployment__project__team").get(pk=operation_id)
    deployment = operation.deployment
    if operation.status in (Operation.Status.SUCCEEDED, Operation.Status.FAILED):
        return operation.status
    with log_context(deployment_id=deployment.pk), deployment_lease(deployment.pk, owner):
        now = timezone.now()
        first_attempt = operation.started_at is None
        if first_attempt:
            operation.started_at = now
        operation.status = Operation.Status.RUNNING
        # Checking again whether the namespace is gone is polling, not a new attempt:
        # a retry after an error counts (the task adds it).
        operation.attempts = max(operation.attempts, 1)
        cluster = get_cluster()
        if first_attempt:
            volumes = [
                f"{c['metadata']['name']} ({c['spec']['resources']['requests']['storage']})"
                for c in claims_of(cluster, namespace=deployment.namespace, deployment_id=deployment.pk)
            ]
            operation.message = f"Deleting namespace {deployment.namespace}" + (
                f" and volumes {', '.join(volumes)}" if volumes else ""
            )
        operation.save(update_fields=["started_at", "status", "attempts", "message"])
        delete_namespace(cluster, deployment.namespace)
        remaining = leftovers(cluster, namespace=deployment.namespace, deployment_id=deployment.pk)
        if remaining:
            if now - operation.started_at > timedelta(seconds=settings.DELETE_TIMEOUT_SECONDS):
                _finish(
                    operation, Operation.Status.FAILED, f"Still in the cluster after deleting: {', '.join(remaining)}"
                )
                return "failed"
            raise StillDeleting(", ".join(remaining))
        with transaction.atomic():
            Deployment.objects.filter(pk=deployment.pk).update(
                state=DeploymentState.DELETED, deleted_at=now, updated_at=now
            )
            # What was still asked of the deployment (a change, a restart) will never be applied now.
            Operation.objects.filter(deployment=deployment, status__in=ACTIVE).exclude(pk=operation.pk).update(
                status=Operation.Status.FAILED, finished_at=now, message=SUPERSEDED_BY_DELETE
            )
            # Only now, with its Ingress gone from the cluster, may another deployment take its hosts.
            release_hosts(deployment=deployment)
            _finish(operation, Operation.Status.SUCCEEDED, operation.message.replace("Deleting", "Deleted", 1))
            record_activity(
                action="deployment.deleted",
                message=f"“{deployment.name}” deleted: namespace and storage are gone",
                deployment=deployment,
                namespace=deployment.namespace,
            )
            events.publish_deployment_changed(deployment)
    return "deleted"


def _finish(operation: Operation, status: str, message: str) -> None:
    operation.status = status
    operation.message = message
    operation.finished_at = timezone.now()
    operation.save(update_fields=["status", "message", "finished_at"])
    if status == Operation.Status.FAILED:
        record_activity(action=f"{operation.kind}.failed", message=message, deployment=operation.deployment)
    events.publish_deployment_changed(operation.deployment)


def operation_gave_up(operation_id: int, message: str) -> None:
    operation = Operation.objects.select_related("deployment__project__team").get(pk=operation_id)
    if operation.is_active:
        _finish(operation, Operation.Status.FAILED, f"Gave up after repeated failures: {message}")


# ----------------------------------------------------------------------------- storage


def delete_storage_run(operation_id: int, *, owner: str, attempt: int = 1) -> str:
    """Permanently delete the volumes of one service (a removed add-on), then confirm they are gone."""
    operation = Operation.objects.select_related("deployment__project__team").get(pk=operation_id)
    deployment = operation.deployment
    if not operation.is_active:
        return operation.status
    if deployment.state == DeploymentState.DELETED:
        _finish(operation, Operation.Status.SUCCEEDED, "The whole deployment was deleted")
        return "deleted"
    with log_context(deployment_id=deployment.pk), deployment_lease(deployment.pk, owner):
        cluster = get_cluster()
        Operation.objects.filter(pk=operation.pk).update(
            status=Operation.Status.RUNNING,
            attempts=Greatest(F("attempts"), Value(1)),
            started_at=operation.started_at or timezone.now(),
        )
        deleted = delete_claims(
            cluster, namespace=deployment.namespace, deployment_id=deployment.pk, service_id=operation.target
        )
        if deleted:
            Operation.objects.filter(pk=operation.pk).update(message=f"Deleting volumes {', '.join(deleted)}")
        remaining = claims_of(
            cluster, namespace=deployment.namespace, deployment_id=deployment.pk, service_id=operation.target
        )
        if remaining:
            raise StillDeleting(", ".join(c["metadata"]["name"] for c in remaining))
        operation.refresh_from_db()
        _finish(operation, Operation.Status.SUCCEEDED, f"Storage of {operation.target} deleted")
        record_activity(
            action="storage.deleted",
            message=f"Storage of {operation.target} permanently deleted",
            deployment=deployment,
            service=operation.target,
        )
    return "deleted"
