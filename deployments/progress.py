"""Operations end when their effect is real, not when the API server accepted the objects.

After the worker applied a create, change or restart, its operation stays
running, waiting for the cluster: it succeeds once the status tree the watcher
computed is ``settled`` at (at least) its generation (every service rolled out
and ready: new pods ready and old ones gone; or, disabled, nothing running), and
fails with the status's reason, the cluster's own words, when that has not
happened OPERATION_TIMEOUT_SECONDS after it was applied. Until then its message
follows the status.

`operations_settle` is called where the tree is stored (`statuses.status_store`),
right after an apply (`lifecycle.reconcile_run`: the watcher may have seen the
rollout before the apply committed) and every SWEEP_SECONDS by the watcher that
sweeps (`operations_sweep`), so a timeout fires even when nothing changes.
Every update is a compare-and-set on still-active rows: safe to run twice or
concurrently.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from deployments import events
from deployments.cluster import status as S
from deployments.models import Deployment, DeploymentStatus, Operation, record_activity

logger = logging.getLogger(__name__)

APPLY_KINDS = (Operation.Kind.CREATE, Operation.Kind.RECONCILE, Operation.Kind.RESTART)
ACTIVE = (Operation.Status.PENDING, Operation.Status.RUNNING)

DONE = {
    S.CREATE: "Created: every service is ready",
    S.CHANGE: "Applied: the pods running the change are ready",
    S.RESTART: "Restarted: every pod was replaced and the new ones are ready",
    S.ENABLE: "Enabled: every service is ready",
    S.DISABLE: "Disabled: nothing runs any more",
}


def waiting_for_the_cluster(deployment: Deployment):
    """Its apply operations that were applied and now wait for the cluster to show them."""
    return Operation.objects.filter(
        deployment=deployment,
        kind__in=APPLY_KINDS,
        status__in=ACTIVE,
        generation__lte=deployment.applied_generation,
    )


def operations_settle(
    deployment_id: int,
    tree: Mapping | None = None,
    *,
    now: datetime | None = None,
    deployment: Deployment | None = None,
) -> int:
    """Finish the applied operations of one deployment whose effect the status shows; fail those
    past OPERATION_TIMEOUT_SECONDS with the status's reason; let the others say what they wait for.

    ``tree``: the status just computed (else the stored one); ``deployment``: the row, when the
    caller read it already (with its project and team). Idempotent. Returns how many ended.
    """
    now = now or timezone.now()
    if deployment is None:
        deployment = Deployment.objects.select_related("project__team").filter(pk=deployment_id).first()
    if deployment is None:
        return 0
    if tree is None:
        tree = DeploymentStatus.objects.filter(deployment_id=deployment_id).values_list("tree", flat=True).first()
    tree = tree or {}
    waiting = list(waiting_for_the_cluster(deployment).select_related("requested_by"))
    if not waiting:
        return 0
    ended = 0
    reason = str(tree.get("reason") or "no status from the cluster yet")
    deadline = now - timedelta(seconds=settings.OPERATION_TIMEOUT_SECONDS)
    with transaction.atomic():
        for operation in waiting:
            intent = operation.intent()
            if tree.get("settled") and tree.get("generation", 0) >= operation.generation:
                message = DONE.get(intent.kind if intent else "", "Done")
                ended += _end(operation, deployment, Operation.Status.SUCCEEDED, message, now)
            elif tree.get("health") != "unknown" and (operation.applied_at or operation.requested_at) < deadline:
                # Counted from the apply, and never while the cluster cannot be seen (an unknown status).
                message = f"Did not take effect within {_duration(settings.OPERATION_TIMEOUT_SECONDS)}: {reason}"
                ended += _end(operation, deployment, Operation.Status.FAILED, message, now)
            elif tree.get("reason") and tree.get("generation", 0) >= operation.generation:
                # What the status says of this generation: the operation's progress, in the same words.
                message = f"Applied; waiting for the cluster: {reason}"
                Operation.objects.filter(pk=operation.pk, status__in=ACTIVE).exclude(message=message).update(
                    message=message[:2000]
                )
        if ended:
            events.publish_deployment_changed(deployment)
    return ended


def _duration(seconds: int) -> str:
    return f"{seconds} s" if seconds < 120 else f"{round(seconds / 60)} min"


def _end(operation: Operation, deployment: Deployment, status: str, message: str, now: datetime) -> int:
    # Compare-and-set: another watcher (or the sweep) may have ended it meanwhile.
    changed = Operation.objects.filter(pk=operation.pk, status__in=ACTIVE).update(
        status=status, finished_at=now, message=message, due_at=None
    )
    if changed:
        outcome = "done" if status == Operation.Status.SUCCEEDED else "failed"
        record_activity(
            action=f"{operation.kind}.{outcome}",
            message=f"{operation.get_kind_display()}{f' of {operation.target}' if operation.target else ''}: {message}",
            deployment=deployment,
            operation=operation.pk,
        )
        if status == Operation.Status.FAILED:
            logger.warning("operation %s of deployment %s failed: %s", operation.pk, operation.deployment_id, message)
    return changed


def operations_sweep(now: datetime | None = None) -> int:
    """Settle every deployment with operations waiting for the cluster (the watcher's periodic pass)."""
    ids = (
        Operation.objects.filter(
            kind__in=APPLY_KINDS, status__in=ACTIVE, generation__lte=F("deployment__applied_generation")
        )
        .values_list("deployment_id", flat=True)
        .distinct()
    )
    return sum(operations_settle(deployment_id, now=now) for deployment_id in sorted(set(ids)))
