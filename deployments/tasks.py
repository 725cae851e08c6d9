"""Celery tasks: thin. Each takes ids, calls one `lifecycle` function, and turns
errors into a retry with backoff (temporary) or a failed operation (permanent).

All run with acks_late and reject-on-worker-lost (settings), so a worker
killed mid-task loses nothing: the message is delivered again and the
function, being idempotent, simply runs again. Before each retry a task says
on its operations when it will run again (`sweeper.due_in`), so the sweeper
tells a retry that is only waiting from one that was lost. A database error
(the connection killed, PostgreSQL restarting) runs the whole task again soon
on a new connection: its transactions were rolled back, and it is idempotent.
"""

import logging
import random
import time

from celery import shared_task
from django.db import InterfaceError, OperationalError, connection
from django.db.models import F

from deployments import dispatch, lifecycle, sweeper
from deployments.cluster.errors import ClusterError
from deployments.leases import execution_owner
from deployments.models import Operation
from diploi_site.logs import log_context
from diploi_site.metrics import RECONCILE_SECONDS

logger = logging.getLogger(__name__)

CLUSTER_RETRIES = 12
MAX_BACKOFF_SECONDS = 60
LEASE_RETRIES = 500
# The database connection died (PostgreSQL restarted, or killed it) or refused the transaction (a
# deadlock): what the transaction wrote was rolled back and every unit of work is idempotent, so the
# whole task runs again on a fresh connection, every 1-3 s for a few minutes.
DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_RETRIES = 100


def backoff(retries: int) -> float:
    """Exponential backoff with jitter, capped: 1-2 s, 2-3 s, 4-5 s ... up to a minute."""
    return min(2**retries, MAX_BACKOFF_SECONDS) + random.random()


def cluster_backoff(retries: int, error: ClusterError) -> float:
    """The backoff, but never sooner than the server's Retry-After (a 429 or 503 that says how long)."""
    return max(backoff(retries), error.retry_after or 0)


def _retry(task, error: Exception, countdown: float, operations, **options):
    sweeper.due_in(operations, countdown)
    return task.retry(exc=error, countdown=countdown, **options)


def _retry_after_database_error(task, error: Exception, operations):
    logger.warning("%s: the database failed (%s); running it again on a new connection", task.name, error)
    connection.close()
    return _retry(task, error, 1 + 2 * random.random(), operations, max_retries=DATABASE_RETRIES)


@shared_task(bind=True, acks_late=True, max_retries=CLUSTER_RETRIES)
def reconcile_deployment(self, deployment_id: int) -> str:
    """Apply a deployment's desired state; enqueue itself again if it changed meanwhile."""
    with log_context(deployment_id=deployment_id, task_id=self.request.id):
        return _reconcile(self, deployment_id)


def _reconcile(task, deployment_id: int) -> str:
    started = time.perf_counter()
    operations = Operation.objects.filter(
        deployment_id=deployment_id, kind__in=lifecycle.APPLY_KINDS, status__in=lifecycle.ACTIVE
    )
    try:
        outcome = lifecycle.reconcile_run(
            deployment_id, owner=execution_owner(task.request.id), attempt=task.request.retries + 1
        )
        RECONCILE_SECONDS.labels(outcome).observe(time.perf_counter() - started)
    except lifecycle.LeaseBusy as busy:
        raise _retry(task, busy, 1 + random.random(), operations, max_retries=LEASE_RETRIES) from busy
    except DATABASE_ERRORS as error:
        raise _retry_after_database_error(task, error, operations) from error
    except ClusterError as error:
        RECONCILE_SECONDS.labels("retryable error" if error.retryable else "error").observe(
            time.perf_counter() - started
        )
        if not error.retryable:
            raise
        if task.request.retries >= task.max_retries:
            lifecycle.reconcile_gave_up(deployment_id, str(error))
            return "gave up"
        raise _retry(task, error, cluster_backoff(task.request.retries, error), operations) from error
    if outcome == "again":
        dispatch.send(reconcile_deployment, deployment_id)
    return outcome


def _run_operation(task, run, gave_up, operation_id: int) -> str:
    with log_context(operation_id=operation_id, task_id=task.request.id):
        return _run_operation_logged(task, run, gave_up, operation_id)


def _run_operation_logged(task, run, gave_up, operation_id: int) -> str:
    operation = Operation.objects.filter(pk=operation_id)
    try:
        return run(operation_id, owner=execution_owner(task.request.id), attempt=task.request.retries + 1)
    except lifecycle.LeaseBusy as busy:
        raise _retry(task, busy, 1 + random.random(), operation, max_retries=LEASE_RETRIES) from busy
    except DATABASE_ERRORS as error:
        raise _retry_after_database_error(task, error, operation) from error
    except lifecycle.StillDeleting as pending:
        # Not an error: the cluster needs a moment. Check again soon (the
        # operation itself gives up after DELETE_TIMEOUT_SECONDS).
        raise _retry(task, pending, 2, operation, max_retries=None) from pending
    except ClusterError as error:
        if not error.retryable or task.request.retries >= task.max_retries:
            gave_up(operation_id, str(error))
            return "failed"
        # A real retry: the next run is one more attempt (polling a delete is not).
        operation.update(attempts=F("attempts") + 1)
        raise _retry(task, error, cluster_backoff(task.request.retries, error), operation) from error


@shared_task(bind=True, acks_late=True, max_retries=CLUSTER_RETRIES)
def delete_deployment(self, operation_id: int) -> str:
    """Delete a deployment's namespace and storage; finish once the cluster confirms they are gone."""
    return _run_operation(self, lifecycle.delete_run, lifecycle.operation_gave_up, operation_id)


@shared_task(bind=True, acks_late=True, max_retries=CLUSTER_RETRIES)
def delete_storage(self, operation_id: int) -> str:
    """Permanently delete the volumes of a removed add-on."""
    return _run_operation(self, lifecycle.delete_storage_run, lifecycle.operation_gave_up, operation_id)
