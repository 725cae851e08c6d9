"""Self-heal: what Diploi owns and the cluster lost or someone changed by hand is applied again.

The status (`cluster/status.py`) names the drift from what the watcher observes: a
Service or the Ingress deleted, a workload scaled by hand, an image changed; only
while no operation of ours runs and once the deployment was applied. The watcher
calls `drift_correct`, which records it in the Activity tab and sends a
reconcile: server-side apply of the whole desired state (forcing our fields back)
restores it. Level-triggered: while the drift is still observed, the watcher calls
again now and then (`watcher.DRIFT_CORRECT_SECONDS`).
"""

from __future__ import annotations

import logging

from django.db import transaction

from deployments.dispatch import send_on_commit
from deployments.models import Deployment, DeploymentState, record_activity

logger = logging.getLogger(__name__)


def drift_correct(*, deployment_id: int, drift: list[str]) -> bool:
    """Record the drift on the deployment's Activity and reconcile it. False when nothing is to be done
    (being deleted, or its desired state was refused for good). Safe to call twice: reconciles are idempotent."""
    with transaction.atomic():
        deployment = (
            Deployment.objects.select_related("project__team")
            .filter(pk=deployment_id, state__in=(DeploymentState.RUNNING, DeploymentState.RESTARTING))
            .first()
        )
        if deployment is None or deployment.permanently_failed:
            return False
        message = f"Drift corrected: {'; '.join(drift)}; applying the desired state again"
        record_activity(action="deployment.drift_corrected", message=message, deployment=deployment, drift=drift)
        from deployments.tasks import reconcile_deployment

        send_on_commit(reconcile_deployment, deployment.pk)
    logger.info("deployment %s drifted (%s): reconciling", deployment_id, "; ".join(drift))
    return True
