"""Storing computed statuses: the database side of the watcher.

`status_store` recomputes one deployment's status from an observation and
writes it under a row lock, so any number of watchers can run: each reads the
previous tree inside the lock and carries "since" forward from it. A status
that did not change is not written and not published. Each call reads a fixed
number of rows, whatever the number of deployments.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deployments import events, progress
from deployments.cluster.connection import cluster_settings
from deployments.cluster.status import Observation, compute_status, stale_status
from deployments.models import Deployment, DeploymentState, DeploymentStatus
from diploi_site.tracing import trace

logger = logging.getLogger(__name__)


def comparable(tree: dict) -> dict:
    """The tree without its "since" stamps and its timeline (which changes only with the health,
    compared anyway, and is carried from the stored tree): what decides whether anything changed."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("since", "timeline")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(tree)


def status_store(
    deployment_id: int, observation: Observation, *, now: datetime | None = None, deployment: Deployment | None = None
) -> bool:
    """Recompute and store one deployment's status. True when it changed (and was published).

    ``deployment``: the row, when the caller has just read it (not deleted, with its project and
    team, and its active operations as ``active_operations``): the watcher's batch. The status row
    is locked and read here either way: it is what several watchers must not both write.
    """
    now = now or timezone.now()
    with transaction.atomic():
        if deployment is None:
            deployment = (
                Deployment.objects.select_related("project__team", "template_version")
                # The parsed spec is cached per version: its source and data are not needed.
                .defer("template_version__spec_data", "template_version__source")
                .filter(pk=deployment_id)
                .exclude(state__in=(DeploymentState.DELETED,))
                .first()
            )
        if deployment is None:
            return False
        status, _ = DeploymentStatus.objects.select_for_update().get_or_create(deployment_id=deployment_id)
        trace("locked", deployment_id)
        tree = compute_status(
            deployment.expectation(cluster_settings(), getattr(deployment, "active_operations", None)),
            observation,
            now=now,
            grace=timedelta(seconds=settings.STATUS_GRACE_SECONDS),
            previous=status.tree or None,
        )
        trace("computed", deployment_id)
        changed = comparable(tree) != comparable(status.tree or {}) or status.observed_at is None
        status.observed_at = now
        status.cluster_error = ""
        if not changed:
            DeploymentStatus.objects.filter(pk=status.pk).update(observed_at=now, cluster_error="")
            return False
        status.tree = tree
        status.health = tree["health"]
        status.reason = tree["reason"][:300]
        status.since = datetime.fromisoformat(tree["since"])
        status.save()
        # on_commit callbacks run in order: the commit is stamped before the publish starts.
        transaction.on_commit(lambda: trace("committed", deployment_id))
        events.publish_deployment_changed(deployment)
        # An operation waiting for what this tree shows ends now (or says what it waits for).
        progress.operations_settle(deployment_id, tree, now=now, deployment=deployment)
    return True


def status_mark_stale(*, since: datetime, error: str, now: datetime | None = None) -> int:
    """Every live deployment's status becomes "unknown", saying since when and why. Returns how many changed."""
    now = now or timezone.now()
    changed = 0
    ids = list(Deployment.objects.live().exclude(state=DeploymentState.DELETING).values_list("pk", flat=True))
    for deployment_id in ids:
        with transaction.atomic():
            status, _ = DeploymentStatus.objects.select_for_update().get_or_create(deployment_id=deployment_id)
            if status.health == "unknown" and status.cluster_error:
                continue
            tree = stale_status(status.tree or None, since=since, error=error, now=now)
            status.tree = tree
            status.health = tree["health"]
            status.reason = tree["reason"][:300]
            status.since = datetime.fromisoformat(tree["since"])
            status.cluster_error = error[:300]
            status.save()
            events.publish_deployment_changed(Deployment.objects.select_related("project__team").get(pk=deployment_id))
            changed += 1
    return changed
