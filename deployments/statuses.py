"""Storing computed statuses: the database side of the watcher.

`status_store` recomputes one deployment's status from an observation and
writes it under a row lock, so any number of watchers can run: each reads the
previous tree inside the lock and carries "since" forward from it. A status
that did not change is not written and not published. Each call reads a fixed
number of rows, whatever the number of deployments.

Builds are rows, not cluster objects: the Builds node is read from them with
the rest of the tree, and `status_builds_refresh` re-derives the stored tree
when a build row moves (the build services call it on commit), so every view
(the project list, the team's counts, the page) reads the same health.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.urls import reverse
from django.utils import timezone

from deployments import events, progress
from deployments.builds.models import Build
from deployments.builds.status import builds_node
from deployments.cluster.connection import cluster_settings
from deployments.cluster.status import Observation, apply_builds, carry_since, compute_status, stale_status
from deployments.models import Deployment, DeploymentState, DeploymentStatus
from diploi_site.baked import BakedQuery
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


def tree_changed(previous: dict | None, tree: dict) -> bool:
    """Whether ``tree`` says anything ``previous`` (the stored tree) did not: more than its stamps."""
    return comparable(tree) != comparable(previous or {})


def _live_deployment(deployment_id: int) -> Deployment | None:
    return (
        Deployment.objects.select_related("project__team", "template_version")
        # The parsed spec is cached per version: its source and data are not needed.
        .defer("template_version__spec_data", "template_version__source")
        .filter(pk=deployment_id)
        .exclude(state=DeploymentState.DELETED)
        .first()
    )


def status_store(
    deployment_id: int,
    observation: Observation,
    *,
    now: datetime | None = None,
    deployment: Deployment | None = None,
    computed: tuple[dict | None, dict] | None = None,
) -> bool:
    """Recompute and store one deployment's status. True when it changed (and was published).

    ``deployment``: the row, when the caller has just read it (not deleted, with its project and
    team, and its active operations as ``active_operations``): the watcher's batch. ``computed``:
    (the stored tree the caller read, the tree it computed from it and ``observation``): stored with
    a compare-and-set when no operation is under way (`_stored_if_unchanged`). Otherwise the status
    row is locked and read: it is what several writers must not both write. When it still holds the
    tree the caller read, the caller's tree is stored as it is; otherwise (another watcher, a build's
    refresh wrote since) it is computed again from the row, and its builds read again.
    """
    now = now or timezone.now()
    if deployment is not None and computed is not None and _stored_if_unchanged(deployment, *computed, now=now):
        return True
    with transaction.atomic():
        if deployment is None:
            deployment = _live_deployment(deployment_id)
        if deployment is None:
            return False
        status, _ = DeploymentStatus.objects.select_for_update().get_or_create(deployment_id=deployment_id)
        trace("locked", deployment_id)
        if computed is not None and computed[0] == (status.tree or None):
            tree = computed[1]
        else:
            tree = compute_status(
                deployment.expectation(cluster_settings(), getattr(deployment, "active_operations", None)),
                observation,
                now=now,
                grace=timedelta(seconds=settings.STATUS_GRACE_SECONDS),
                previous=status.tree or None,
                app_grace=timedelta(seconds=settings.APP_STATUS_GRACE_SECONDS),
                builds=builds_nodes([deployment])[deployment.pk],
            )
        trace("computed", deployment_id)
        changed = tree_changed(status.tree, tree) or status.observed_at is None
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
        # An operation waiting for what this tree shows ends now (or says what it waits for). The
        # watcher's batch read the operations under way a moment ago: none, nothing to settle (one
        # query less before the commit). One that starts after that read moves the cluster, whose
        # events recompute the deployment again; otherwise the sweep (`operations_sweep`) settles it.
        if getattr(deployment, "active_operations", None) != []:
            progress.operations_settle(deployment_id, tree, now=now, deployment=deployment)
    return True


def _stored_if_unchanged(deployment: Deployment, previous: dict | None, tree: dict, *, now: datetime) -> bool:
    """Write ``tree`` in one statement if the status row still holds ``previous``: a compare-and-set,
    with no transaction, no lock taken and read first. True when written (and published).

    The UPDATE's condition is checked on the row's newest version (it waits for a writer holding
    the row, then compares again), so it is exactly the locked path's check, two round trips and a
    commit sooner. Only for the watcher's rows of a deployment with no operation under way: an
    operation to settle needs the same transaction as the status it waits for (`status_store`'s).
    False: the row changed since it was read (or holds no status yet): the locked path decides.
    """
    if not previous or getattr(deployment, "active_operations", None) != []:
        return False
    trace("locked", deployment.pk)
    trace("computed", deployment.pk)
    written = DeploymentStatus.objects.filter(
        deployment_id=deployment.pk, tree=previous, observed_at__isnull=False
    ).update(
        tree=tree,
        health=tree["health"],
        reason=tree["reason"][:300],
        since=datetime.fromisoformat(tree["since"]),
        observed_at=now,
        cluster_error="",
        updated_at=timezone.now(),
    )
    if not written:
        return False
    trace("committed", deployment.pk)
    events.publish_deployment_changed(deployment)  # on commit: at once, the watcher's UPDATE committed on its own
    return True


def status_builds_refresh(deployment_id: int, *, now: datetime | None = None) -> bool:
    """The stored status of one deployment with its Builds node read from the build rows again, and
    the overall health re-derived (`apply_builds`) from what the cluster said last. Does not publish:
    the build services that call it (on commit) publish right after. Idempotent; True when it changed.
    Nothing is written before the watcher stored a first status (the page shows the rows meanwhile)."""
    now = now or timezone.now()
    with transaction.atomic():
        deployment = _live_deployment(deployment_id)
        if deployment is None:
            return False
        status = DeploymentStatus.objects.select_for_update().filter(deployment_id=deployment_id).first()
        if status is None or not status.tree:
            return False
        node = builds_nodes([deployment])[deployment.pk]
        deleting = deployment.state == DeploymentState.DELETING
        tree = carry_since(apply_builds(status.tree, node, deleting=deleting), status.tree, now)
        if comparable(tree) == comparable(status.tree):
            return False
        status.tree = tree
        status.health = tree["health"]
        status.reason = tree["reason"][:300]
        status.since = datetime.fromisoformat(tree["since"])
        status.save(update_fields=["tree", "health", "reason", "since", "updated_at"])
    return True


def status_builds_changed(deployment) -> None:
    """A build row of ``deployment`` moved: on commit, the stored status follows it, then live pages are
    told (on_commit callbacks run in order). Call inside the transaction that moved the row."""
    deployment_id = deployment.pk

    def refresh() -> None:
        # Best effort: should it fail, the watcher's next pass over the deployment reads the rows too.
        status_builds_refresh(deployment_id)

    transaction.on_commit(refresh, robust=True)
    events.publish_deployment_changed(deployment)


BUILDS_READ = 50  # per deployment: enough rows to find each component's newest build, whatever the others did

BUILD_FIELDS = (
    "id",
    "deployment_id",
    "component",
    "state",
    "step",
    "steps",
    "step_text",
    "message",
    "commit_sha",
    "commit_message",
    "simulated",
    "run_url",
    "requested_at",
    "started_at",
    "finished_at",
)


NEWEST_FIRST = (F("requested_at").desc(), F("pk").desc())
_newest_builds = BakedQuery(
    lambda deployment_id: (
        Build.objects.filter(deployment_id=deployment_id).order_by(*NEWEST_FIRST).values(*BUILD_FIELDS)[:BUILDS_READ]
    )
)


def builds_nodes(deployments: Iterable[Deployment]) -> dict[int, dict]:
    """The Builds node of each of ``deployments``: one query for those that build (none when none
    does), at most BUILDS_READ newest rows each, whatever the number of deployments."""
    from deployments.builds.services import buildable_components

    deployments = {d.pk: (d, buildable_components(d)) for d in deployments}
    by_deployment: dict[int, list[dict]] = {pk: [] for pk, (_, components) in deployments.items() if components}
    if by_deployment:
        if len(by_deployment) == 1:  # a status recomputed for an event: a plain index scan, compiled once
            rows = _newest_builds(*by_deployment)
        else:
            rows = (
                Build.objects.filter(deployment_id__in=by_deployment)
                .annotate(rank=Window(RowNumber(), partition_by=[F("deployment_id")], order_by=NEWEST_FIRST))
                .filter(rank__lte=BUILDS_READ)
                .order_by("deployment_id", *NEWEST_FIRST)
                .values(*BUILD_FIELDS)
            )
        for row in rows:
            by_deployment[row["deployment_id"]].append(row)
    return {
        pk: builds_node(
            by_deployment.get(pk, ()),
            buildable=components,
            deployed_commit=deployment.built_commit,
            log_url=lambda build_id, pk=pk: reverse("build_log", args=[pk, build_id]),
            stage_mode=deployment.mode,
        )
        for pk, (deployment, components) in deployments.items()
    }


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
