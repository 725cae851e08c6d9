"""Action runs: one row per click of a template action's Run button, the record the UI and the runner share.

A run moves queued → running → succeeded / failed / cancelled / timed_out, only forward, with
compare-and-set updates (`services`). Its own row rather than an `Operation`: operations are
changes of the desired state that end when the cluster shows them (status intents, the settle
loop, the sweeper's reconciles); an action changes no desired state, ends when its command
exits and carries output, a pod and an exit status that operations have no place for.

One run of an action at a time per deployment is a partial unique constraint on the active
rows: two clicks racing in two web processes cannot both start one.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from deployments.models import lost_after_grace


class ActionRun(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        TIMED_OUT = "timed_out", "Timed out"

    ACTIVE = (State.QUEUED, State.RUNNING)
    FINISHED = (State.SUCCEEDED, State.FAILED, State.CANCELLED, State.TIMED_OUT)

    deployment = models.ForeignKey("deployments.Deployment", on_delete=models.CASCADE, related_name="action_runs")
    action = models.CharField(max_length=80, help_text="The template action's name (its kind).")
    component = models.CharField(max_length=63)
    command = models.JSONField(help_text="The action's argv, as the template gives it.")
    confirmed = models.BooleanField(default=False, help_text="The action asks first, and the user confirmed.")
    timeout_seconds = models.PositiveIntegerField()

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    requested_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)

    pod = models.CharField(max_length=253, blank=True, help_text="The pod it ran in: the component's oldest ready pod.")
    container = models.CharField(max_length=63, blank=True)
    exit_status = models.IntegerField(null=True, blank=True)
    message = models.TextField(blank=True, help_text="Why it failed, timed out or was cancelled.")

    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # stdout and stderr as they arrived, the last ACTION_OUTPUT_MAX_BYTES of them.
    output = models.TextField(blank=True, editable=False)
    output_bytes = models.BigIntegerField(default=0, editable=False, help_text="Everything it printed, kept or not.")
    output_truncated = models.BooleanField(default=False, editable=False)

    # The task execution running it (claimed compare-and-set), and when it must show life next:
    # queued, its task must have started by then; running, the runner renews it every few seconds.
    runner = models.CharField(max_length=64, blank=True, editable=False)
    due_at = models.DateTimeField(null=True, blank=True, default=lost_after_grace)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        indexes = [
            models.Index(fields=["deployment", "-requested_at"]),
            models.Index(fields=["state", "due_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "action"],
                condition=models.Q(state__in=["queued", "running"]),
                name="action_run_one_active_per_action",
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=["queued", "running", "succeeded", "failed", "cancelled", "timed_out"]),
                name="action_run_state_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} on {self.deployment_id} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or timezone.now()
        return max((end - self.started_at).total_seconds(), 0.0)

    @property
    def command_text(self) -> str:
        return " ".join(self.command or ())
