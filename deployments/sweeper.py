"""The database, not the broker, says what work is pending: the sweeper sends lost tasks again.

A Celery message can be lost: Redis restarted with nothing kept, a worker
died holding it (and its retries), or the broker refused it when the request
that recorded the work committed. The rows are not lost. Each kind of
pending work registers here how to find its rows whose task is lost, and how
to send that task again; the watcher's resync loop calls `sweep()` every
SWEEP_SECONDS, one watcher at a time (a `Lease`).

Work is taken as lost when it is still active, overdue (`Operation.due_at`:
its task neither started nor said when it retries within LOST_TASK_SECONDS),
and nobody holds its deployment's lease (a working task renews it every few
seconds). Sending a task that was not lost after all is harmless: the lease
serializes work on a deployment and every task is idempotent, so the copy
finds the work done, or the lease held, and does nothing harmful.

When the cluster answers again after an outage (statuses had turned "unknown"),
the watcher calls `send_waiting()`: tasks waiting in a retry's backoff are sent
at once, so work converges within seconds of the cluster's return rather than
up to a minute after.

Another kind of work (builds, actions) hooks in with a few lines, typically in
its app's `ready()`::

    sweeper.register(sweeper.PendingWork(
        "build", find_lost=lambda now: lost_builds(now), send_again=lambda pk: sweeper.resend(run_build, pk)))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from deployments import dispatch
from deployments.lifecycle import ACTIVE, APPLY_KINDS
from deployments.models import Deployment, DeploymentState, Operation

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingWork:
    """One kind of pending work: how to find the ids its task takes when that task is lost, and how to
    send it again. ``every``: look for it at most this often (seconds; None: at every sweep)."""

    name: str
    find_lost: Callable[[datetime], Iterable[int]]
    send_again: Callable[[int], object]
    every: float | None = None
    # The ids whose task waits in a retry's backoff: sent at once when the cluster answers again after an outage.
    find_waiting: Callable[[datetime], Iterable[int]] | None = None


_REGISTRY: dict[str, PendingWork] = {}


def register(work: PendingWork) -> None:
    """Add (or replace, by name) a kind of pending work the sweeper looks after."""
    _REGISTRY[work.name] = work


def registered() -> list[PendingWork]:
    return list(_REGISTRY.values())


class Sweeper:
    """Sends lost tasks again. One per watcher; remembers when it last looked for each kind."""

    def __init__(self):
        self._last_look: dict[str, float] = {}

    def sweep(self, now: datetime | None = None) -> dict[str, list[int]]:
        """Find every kind's lost work and send its task again; returns what was sent, by kind."""
        now = now or timezone.now()
        due = []
        for work in registered():
            if work.every is not None and time.monotonic() - self._last_look.get(work.name, -work.every) < work.every:
                continue
            self._last_look[work.name] = time.monotonic()
            due.append(work)
        return _send_each(due, lambda work: work.find_lost(now), "was lost; sending it again")

    def send_waiting(self, now: datetime | None = None) -> dict[str, list[int]]:
        """The cluster answers again after an outage: send now the tasks waiting in a backoff (up to a
        minute after a long outage) rather than when their retry comes. Returns what was sent, by kind.

        The waiting copy still runs later and finds the work done: the lease serializes the two, and
        every task is idempotent.
        """
        now = now or timezone.now()
        kinds = [work for work in registered() if work.find_waiting is not None]
        return _send_each(kinds, lambda work: work.find_waiting(now), "waits in a backoff; the cluster is back")


def _send_each(kinds: list[PendingWork], find, why: str) -> dict[str, list[int]]:
    sent = {}
    for work in kinds:
        ids = list(find(work))
        for pk in ids:
            logger.info("sweeper: the task of %s %s %s", work.name, pk, why)
            work.send_again(pk)
        if ids:
            sent[work.name] = ids
    return sent


# ----------------------------------------------------------------------------- helpers for kinds


def due_in(operations: QuerySet[Operation], seconds: float) -> None:
    """Say that a worker acts on these operations again in ``seconds`` (a retry): only LOST_TASK_SECONDS
    after that are they taken as lost. Best effort: if the database cannot be written now, the
    sweeper may send one task too many, which is harmless."""
    due = timezone.now() + timedelta(seconds=seconds + settings.LOST_TASK_SECONDS)
    try:
        operations.update(due_at=due)
    except DatabaseError:
        logger.warning("could not record when %s is retried", operations.model.__name__, exc_info=True)


def overdue(operations: QuerySet[Operation], now: datetime) -> QuerySet[Operation]:
    """The active ones among ``operations`` that are overdue while nobody holds their deployment's lease."""
    return (
        operations.filter(status__in=ACTIVE)
        .filter(Q(due_at__isnull=True) | Q(due_at__lt=now))
        .exclude(deployment__lease_until__gt=now)
    )


def waiting(operations: QuerySet[Operation], now: datetime) -> QuerySet[Operation]:
    """The active ones among ``operations`` whose task is expected later (a retry) while nobody holds their
    deployment's lease."""
    return operations.filter(status__in=ACTIVE, due_at__gte=now).exclude(deployment__lease_until__gt=now)


def resend(task, pk: int, operations: QuerySet[Operation] | None = None) -> bool:
    """Send ``task(pk)`` again; once the broker took it, ``operations`` are due again in a while."""
    sent = dispatch.send(task, pk)
    if sent and operations is not None:
        due_in(operations, 0)
    return sent


# ----------------------------------------------------------------------------- the deployments' own kinds


def _lost_operations(kind: str):
    def find_lost(now: datetime) -> list[int]:
        return list(overdue(Operation.objects.filter(kind=kind), now).values_list("pk", flat=True))

    return find_lost


def _waiting_operations(kind: str):
    def find_waiting(now: datetime) -> list[int]:
        return list(waiting(Operation.objects.filter(kind=kind), now).values_list("pk", flat=True))

    return find_waiting


def _send_operation_again(task_name: str):
    def send_again(operation_id: int) -> bool:
        from deployments import tasks

        return resend(getattr(tasks, task_name), operation_id, Operation.objects.filter(pk=operation_id))

    return send_again


def lost_reconciles(now: datetime) -> list[int]:
    """Deployments with an overdue create, change or restart: their reconcile was lost."""
    operations = (
        overdue(Operation.objects.filter(kind__in=APPLY_KINDS), now)
        .exclude(deployment__state__in=(DeploymentState.DELETING, DeploymentState.DELETED))
        # Applied, waiting for the cluster to show it (`progress`): no task is due.
        .exclude(generation__lte=F("deployment__applied_generation"))
    )
    return sorted(set(operations.values_list("deployment_id", flat=True)))


def waiting_reconciles(now: datetime) -> list[int]:
    """Deployments with a create, change or restart whose reconcile waits in a retry's backoff."""
    operations = (
        waiting(Operation.objects.filter(kind__in=APPLY_KINDS), now)
        .exclude(deployment__state__in=(DeploymentState.DELETING, DeploymentState.DELETED))
        .exclude(generation__lte=F("deployment__applied_generation"))
    )
    return sorted(set(operations.values_list("deployment_id", flat=True)))


def send_reconcile_again(deployment_id: int) -> bool:
    from deployments.tasks import reconcile_deployment

    # Those applied already wait for the cluster, not for a task (`progress`): no due time for them.
    apply_operations = Operation.objects.filter(
        deployment_id=deployment_id, kind__in=APPLY_KINDS, status__in=ACTIVE
    ).exclude(generation__lte=F("deployment__applied_generation"))
    return resend(reconcile_deployment, deployment_id, apply_operations)


def lagging_deployments(now: datetime) -> list[int]:
    """Deployments whose applied generation lags with no apply operation active (their task gave up,
    say, while the cluster was down for long): reconciled again every SWEEP_LAGGING_SECONDS."""
    # Operations already applied only wait for the cluster (`progress`): they ask for no reconcile.
    active_apply = Operation.objects.filter(
        deployment=OuterRef("pk"),
        kind__in=APPLY_KINDS,
        status__in=ACTIVE,
        generation__gt=OuterRef("applied_generation"),
    )
    quiet = now - timedelta(seconds=settings.LOST_TASK_SECONDS)
    lagging = (
        Deployment.objects.filter(
            state__in=(
                DeploymentState.CREATING,
                DeploymentState.RUNNING,
                DeploymentState.RESTARTING,
                DeploymentState.FAILED,
            ),
            applied_generation__lt=F("desired_generation"),
            updated_at__lt=quiet,
        )
        .exclude(lease_until__gt=now)
        .exclude(Exists(active_apply))
    )
    return list(without_permanent_failures(lagging).values_list("pk", flat=True))


def without_permanent_failures(deployments: QuerySet[Deployment]) -> QuerySet[Deployment]:
    """A deployment whose desired generation the cluster refused for good (issue 15.10) is not
    reconciled again until its desired state changes or someone asks to retry."""
    return deployments.exclude(failed_generation=F("desired_generation"))


SWEEP_LAGGING_SECONDS = 30

register(
    PendingWork(
        "reconcile", find_lost=lost_reconciles, send_again=send_reconcile_again, find_waiting=waiting_reconciles
    )
)
register(
    PendingWork(
        "lagging reconcile",
        find_lost=lagging_deployments,
        send_again=send_reconcile_again,
        every=SWEEP_LAGGING_SECONDS,
    )
)
register(
    PendingWork(
        "delete",
        find_lost=_lost_operations(Operation.Kind.DELETE),
        send_again=_send_operation_again("delete_deployment"),
        find_waiting=_waiting_operations(Operation.Kind.DELETE),
    )
)
register(
    PendingWork(
        "storage delete",
        find_lost=_lost_operations(Operation.Kind.DELETE_STORAGE),
        send_again=_send_operation_again("delete_storage"),
        find_waiting=_waiting_operations(Operation.Kind.DELETE_STORAGE),
    )
)
