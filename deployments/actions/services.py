"""Writes to action runs. Views, the runner, the sweeper and the admin call these.

Every service is keyword-only. A state change is a compare-and-set `UPDATE` on the run's
row (its state must still be one the change starts from), so a cancel racing the command's
exit, or a task the sweeper sent again, never moves a run backwards. The start, the cancel
and the end each write an audit row and tell live pages on commit: the deployment's pages
(Overview, Activity) through `deployment.<id>`, the run's own page through `action_run.<id>`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from deployments import events
from deployments.actions.models import ActionRun
from deployments.dispatch import send_on_commit
from deployments.models import Deployment, DeploymentState, record_activity
from templates_catalog.spec import Action

logger = logging.getLogger(__name__)

RUNNABLE = (DeploymentState.CREATING, DeploymentState.RUNNING, DeploymentState.RESTARTING, DeploymentState.FAILED)


class ConfirmationRequired(ValidationError):
    """The action asks first in this stage and the request did not say it was confirmed."""


def action_run_group(run_id: int) -> str:
    return f"action_run.{run_id}"


def publish_run_changed(run: ActionRun) -> None:
    """Tell the run's own page to re-render (new output, a new state), on commit. Best effort."""
    message = {"type": "action.changed", "run_id": run.pk}

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(action_run_group(run.pk), message)
        except Exception:  # noqa: BLE001 - a page that misses one gets the current state when it reconnects
            logger.warning("could not tell the page of action run %s that it changed", run.pk, exc_info=True)

    transaction.on_commit(send)


def _publish(run: ActionRun, deployment: Deployment) -> None:
    publish_run_changed(run)
    events.publish_deployment_page_changed(deployment.pk)


def stage_actions(deployment: Deployment) -> list[Action]:
    """The template's actions offered in the deployment's stage, in the template's order."""
    return [action for action in deployment.spec.actions if deployment.stage in action.stages]


def action_named(deployment: Deployment, name: str) -> Action:
    """The stage's action called ``name``; ValidationError when there is none."""
    for action in stage_actions(deployment):
        if action.name == name:
            return action
    offered = ", ".join(f"“{a.name}”" for a in stage_actions(deployment)) or "none"
    raise ValidationError(f"This deployment has no action “{name[:80]}” in {deployment.stage} (offered: {offered}).")


def timeout_of(action: Action) -> int:
    return action.timeout_seconds or settings.ACTION_TIMEOUT_SECONDS


def active_run(deployment: Deployment, name: str) -> ActionRun | None:
    return ActionRun.objects.filter(deployment=deployment, action=name, state__in=ActionRun.ACTIVE).first()


def action_run_start(
    *, deployment: Deployment, action_name: str, actor, confirmed: bool = False, _attempts: int = 2
) -> tuple[ActionRun, bool]:
    """Queue a run of the action called ``action_name`` and send it to the worker on commit.

    Returns (run, True), or (the run already active, False) when that action is queued or running
    on this deployment: at most one per action, enforced by the database's partial unique
    constraint, so a double click or two web processes get the same run. Raises
    `ConfirmationRequired` for an action that asks first in this stage unless ``confirmed``, and
    ValidationError for an unknown action or a deployment with nothing running to run it in.
    Not idempotent on purpose: every call after the previous run ended starts a new run."""
    action = action_named(deployment, action_name)
    if deployment.state not in RUNNABLE:
        raise ValidationError(f"{deployment.name} is {deployment.get_state_display().lower()}: nothing runs it.")
    if not deployment.enabled:
        raise ValidationError(f"{deployment.name} is disabled: no container runs to run “{action.name}” in.")
    if action.asks_first(deployment.stage) and not confirmed:
        raise ConfirmationRequired(f"“{action.name}” asks first in {deployment.stage}: confirm to run it.")
    try:
        with transaction.atomic():
            run = ActionRun.objects.create(
                deployment=deployment,
                action=action.name,
                component=action.component,
                command=list(action.command),
                confirmed=action.asks_first(deployment.stage),
                timeout_seconds=timeout_of(action),
                requested_by=actor if actor is not None and actor.is_authenticated else None,
            )
            record_activity(
                action="action.requested",
                message=f"asked to run “{action.name}” in {action.component}: {' '.join(action.command)}",
                actor=actor,
                deployment=deployment,
                run_id=run.pk,
            )
            from deployments.actions.tasks import run_action

            send_on_commit(run_action, run.pk)
            _publish(run, deployment)
    except IntegrityError:
        # The constraint: one of this action is already queued or running. Show that one.
        running = active_run(deployment, action.name)
        if running is not None:
            return running, False
        if _attempts <= 1:
            raise ValidationError(f"“{action.name}” is starting or ending right now: try again.") from None
        # It ended between our insert and this read: the click may go ahead.
        return action_run_start(
            deployment=deployment, action_name=action_name, actor=actor, confirmed=confirmed, _attempts=_attempts - 1
        )
    return run, True


def action_run_cancel(*, run: ActionRun, actor) -> ActionRun:
    """Cancel a run: a queued one ends now; a running one is marked, and its runner closes the
    command's stdin (which kills it) within a moment. Idempotent: an ended run, or one already
    marked, is returned as it is."""
    now = timezone.now()
    user = actor if actor is not None and actor.is_authenticated else None
    with transaction.atomic():
        ended = ActionRun.objects.filter(pk=run.pk, state=ActionRun.State.QUEUED).update(
            state=ActionRun.State.CANCELLED,
            finished_at=now,
            cancel_requested_at=now,
            cancelled_by=user,
            message=f"Cancelled by {user.username if user else 'Diploi'} before it started.",
            due_at=None,
        )
        marked = ended or ActionRun.objects.filter(
            pk=run.pk, state=ActionRun.State.RUNNING, cancel_requested_at__isnull=True
        ).update(cancel_requested_at=now, cancelled_by=user)
        run.refresh_from_db()
        if marked:
            record_activity(
                action="action.cancel",
                message=f"cancelled “{run.action}”",
                actor=actor,
                deployment=run.deployment,
                run_id=run.pk,
            )
            _publish(run, run.deployment)
    return run


# ----------------------------------------------------------------------------- the runner's side


def heartbeat() -> timezone.datetime:
    """When a running run must show life next (the runner renews it well before)."""
    return timezone.now() + timedelta(seconds=settings.LOST_TASK_SECONDS)


def action_run_claim(*, run_id: int, runner: str) -> ActionRun | None:
    """Take a queued run for ``runner`` (compare-and-set queued → running); None when it is not
    queued any more (cancelled, or another execution of the task took it)."""
    claimed = ActionRun.objects.filter(pk=run_id, state=ActionRun.State.QUEUED).update(
        state=ActionRun.State.RUNNING, runner=runner, started_at=timezone.now(), due_at=heartbeat()
    )
    if not claimed:
        return None
    run = ActionRun.objects.select_related("deployment__project__team", "deployment__template_version").get(pk=run_id)
    _publish(run, run.deployment)
    return run


def action_run_where(*, run: ActionRun, runner: str, pod: str, container: str) -> bool:
    """Record the pod the runner chose; False when the run is no longer this runner's."""
    updated = ActionRun.objects.filter(pk=run.pk, state=ActionRun.State.RUNNING, runner=runner).update(
        pod=pod, container=container
    )
    run.pod, run.container = pod, container
    if updated:
        publish_run_changed(run)
    return bool(updated)


def action_run_progress(*, run: ActionRun, runner: str, output: str | None, seen: int, truncated: bool) -> bool:
    """Store the output so far (``output``: the kept tail, None when unchanged) and renew the
    heartbeat. Returns whether a cancel was asked; raises `RunLost` when the run is no longer
    this runner's (the sweeper ended it)."""
    fields = {"due_at": heartbeat()}
    if output is not None:
        fields.update(output=output, output_bytes=seen, output_truncated=truncated)
    updated = ActionRun.objects.filter(pk=run.pk, state=ActionRun.State.RUNNING, runner=runner).update(**fields)
    if not updated:
        raise RunLost(f"action run {run.pk} is no longer running here")
    if output is not None:
        publish_run_changed(run)
    return ActionRun.objects.filter(pk=run.pk, cancel_requested_at__isnull=False).exists()


class RunLost(Exception):
    """The run was ended by someone else (the sweeper took it as lost) while this runner had it."""


def action_run_finish(
    *,
    run: ActionRun,
    runner: str | None,
    state: str,
    exit_status: int | None = None,
    message: str = "",
    output: str | None = None,
    seen: int | None = None,
    truncated: bool | None = None,
) -> bool:
    """End a running run (compare-and-set running → ``state``; ``runner`` None: whoever holds it,
    for the sweeper). Writes the audit row. False when it had already ended."""
    if state not in ActionRun.FINISHED:
        raise ValueError(f"not an end state: {state}")
    fields = {"state": state, "exit_status": exit_status, "message": message, "finished_at": timezone.now()}
    fields["due_at"] = None
    if output is not None:
        fields.update(output=output, output_bytes=seen or 0, output_truncated=bool(truncated))
    rows = ActionRun.objects.filter(pk=run.pk, state=ActionRun.State.RUNNING)
    if runner is not None:
        rows = rows.filter(runner=runner)
    with transaction.atomic():
        if not rows.update(**fields):
            return False
        run.refresh_from_db()
        took = f" after {run.duration_seconds:.1f} s" if run.duration_seconds is not None else ""
        outcome = {
            ActionRun.State.SUCCEEDED: f"“{run.action}” succeeded{took}",
            ActionRun.State.FAILED: f"“{run.action}” failed{took}: {message}",
            ActionRun.State.CANCELLED: f"“{run.action}” was cancelled{took}",
            ActionRun.State.TIMED_OUT: f"“{run.action}” timed out{took}",
        }[state]
        record_activity(
            action=f"action.{state}",
            message=outcome,
            deployment=run.deployment,
            run_id=run.pk,
            exit_status=exit_status,
        )
        _publish(run, run.deployment)
    return True


def lost_runs(now) -> list[int]:
    """Active runs past their `due_at`: a queued one whose task never started, a running one whose
    runner stopped renewing its heartbeat (the worker died)."""
    return list(
        ActionRun.objects.filter(state__in=ActionRun.ACTIVE, due_at__lt=now)
        .order_by("due_at")
        .values_list("pk", flat=True)[:100]
    )
