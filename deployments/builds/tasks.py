"""The cluster runner's task: thin, like `deployments.tasks`.

`run_build` moves one build forward (`runner.build_run`): it creates the Job
and follows its log until the build ends. While the pod starts it looks
again every BUILD_POLL_SECONDS; temporary cluster errors retry with backoff.
Before each retry the build's `due_at` says when, so the sweeper tells a
waiting task from a lost one.
"""

from __future__ import annotations

import logging
import random

from celery import shared_task

from deployments import sweeper
from deployments.builds import runner, services
from deployments.builds.models import Build
from deployments.cluster.errors import ClusterError
from deployments.leases import LeaseBusy, execution_owner
from deployments.tasks import CLUSTER_RETRIES, LEASE_RETRIES, backoff
from diploi_site.logs import log_context

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, max_retries=CLUSTER_RETRIES)
def run_build(self, build_id: int) -> str:
    """Run (or keep following) one cluster build until it ends. Idempotent."""
    with log_context(build_id=build_id, task_id=self.request.id):
        return _run(self, build_id)


def _retry(task, error: Exception, countdown: float, build_id: int, **options):
    sweeper.due_in(Build.objects.filter(pk=build_id), countdown)
    return task.retry(exc=error, countdown=countdown, **options)


def _run(task, build_id: int) -> str:
    from django.conf import settings

    try:
        return runner.build_run(build_id, owner=execution_owner(task.request.id))
    except LeaseBusy as busy:
        raise _retry(task, busy, 1 + random.random(), build_id, max_retries=LEASE_RETRIES) from busy
    except runner.StillBuilding as waiting:
        if runner.lost(build_id):
            _give_up(build_id, f"Gave up: the build did not finish within its deadline ({waiting})")
            return "failed"
        raise _retry(task, waiting, settings.BUILD_POLL_SECONDS, build_id, max_retries=None) from waiting
    except ClusterError as error:
        if not error.retryable or task.request.retries >= task.max_retries:
            _give_up(build_id, f"The cluster refused or failed the build: {error}")
            return "failed"
        raise _retry(task, error, backoff(task.request.retries), build_id) from error


def _give_up(build_id: int, message: str) -> None:
    try:
        services.build_failed(build_id=build_id, message=message)
    except services.BuildStateConflict:
        pass  # it finished (or was cancelled) meanwhile
