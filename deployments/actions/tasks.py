"""The action runner's task: thin, like `deployments.tasks`."""

from __future__ import annotations

from celery import shared_task

from deployments.actions import runner
from deployments.leases import execution_owner
from diploi_site.logs import log_context


@shared_task(bind=True, acks_late=True)
def run_action(self, run_id: int) -> str:
    """Run one queued action to its end, in the worker (the web process never waits on a command).
    Safe to receive twice: the run is claimed compare-and-set, so a copy finds it taken and returns."""
    with log_context(action_run_id=run_id, task_id=self.request.id):
        return runner.action_run(run_id, owner=execution_owner(self.request.id))
