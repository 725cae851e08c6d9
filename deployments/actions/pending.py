"""The actions' kind of pending work for the sweeper.

A queued run whose task was lost is sent again (the task claims it compare-and-set, so a copy
does nothing). A running run whose runner stopped renewing its heartbeat is ended as failed,
never run again: an action is not idempotent (a migration, a reload). Its command died with
the runner's stream: the command runs behind a guard that kills it when its stdin closes,
and the API server closes it when the connection goes.
"""

from __future__ import annotations

from deployments import sweeper


def _send_again(run_id: int) -> bool:
    from deployments.actions import services
    from deployments.actions.models import ActionRun
    from deployments.actions.tasks import run_action

    run = ActionRun.objects.select_related("deployment").filter(pk=run_id).first()
    if run is None or not run.is_active:
        return False
    if run.state == ActionRun.State.QUEUED:
        sent = sweeper.dispatch.send(run_action, run_id)
        if sent:
            ActionRun.objects.filter(pk=run_id, state=ActionRun.State.QUEUED).update(due_at=services.heartbeat())
        return sent
    return services.action_run_finish(
        run=run,
        runner=None,
        state=ActionRun.State.FAILED,
        message="The worker running it stopped (no heartbeat); its stream closed, which ends the command.",
    )


def _find_lost(now) -> list[int]:
    from deployments.actions.services import lost_runs

    return lost_runs(now)


def register() -> None:
    sweeper.register(sweeper.PendingWork("action", find_lost=_find_lost, send_again=_send_again))
