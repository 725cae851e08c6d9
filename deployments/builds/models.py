"""Builds: one row per component build, the record the UI, the rollout and the builders share.

A build moves queued → running → succeeded / failed / cancelled, and only
forward: every state change is a compare-and-set `UPDATE` on the row
(`services`), whoever the builder is (our BuildKit Job, `runner`, or an
external CI reporting through the API). The rollout reads these rows, never
the builder.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import models
from django.utils import timezone

from deployments.models import lost_after_grace

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")


class Build(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Runner(models.TextChoices):
        CLUSTER = "cluster", "In the cluster (BuildKit Job)"
        EXTERNAL = "external", "External CI"

    class Trigger(models.TextChoices):
        CREATED = "created", "Deployment created"
        DEPLOY_LATEST = "deploy_latest", "Deploy latest"
        PUSH = "push", "Push webhook"
        ADMIN = "admin", "Admin"
        API = "api", "Build API"

    ACTIVE = (State.QUEUED, State.RUNNING)
    FINISHED = (State.SUCCEEDED, State.FAILED, State.CANCELLED)

    deployment = models.ForeignKey("deployments.Deployment", on_delete=models.CASCADE, related_name="builds")
    project = models.ForeignKey("deployments.Project", on_delete=models.CASCADE, related_name="builds")
    component = models.CharField(max_length=63)
    repository = models.CharField(max_length=500)
    branch = models.CharField(max_length=200)
    commit_sha = models.CharField(max_length=40)
    commit_message = models.CharField(max_length=300, blank=True)
    simulated = models.BooleanField(
        default=False, help_text="The commit and the image are simulated (the cluster emulator): nothing was built."
    )
    dockerfile = models.CharField(max_length=300, default="Dockerfile")
    context = models.CharField(max_length=300, default=".")
    image = models.CharField(max_length=400, help_text="Where the image is pushed, without tag or digest.")
    digest = models.CharField(max_length=71, blank=True)

    runner = models.CharField(max_length=16, choices=Runner.choices, default=Runner.CLUSTER)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    step = models.PositiveIntegerField(default=0)
    steps = models.PositiveIntegerField(default=0)
    step_text = models.CharField(max_length=300, blank=True)
    message = models.TextField(blank=True, help_text="Why it failed or was cancelled.")

    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    triggered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    run_url = models.URLField(max_length=500, blank=True, help_text="The external CI run; empty: our log page.")
    external_id = models.CharField(max_length=200, blank=True)
    job_name = models.CharField(max_length=63, blank=True, editable=False)
    # The task execution following the build's log now: one at a time, claimed compare-and-set while
    # ``due_at`` has not passed (it renews it), so a copy the sweeper sent never appends lines twice.
    follower = models.CharField(max_length=64, blank=True, editable=False)

    requested_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Like `Operation.due_at`: past it, an active cluster build's task is taken as lost and sent again.
    due_at = models.DateTimeField(null=True, blank=True, default=lost_after_grace)

    # The log, bounded (BUILD_LOG_MAX_BYTES): the tail is kept when it grows past that.
    log = models.TextField(blank=True, editable=False)
    log_truncated = models.BooleanField(default=False, editable=False)
    # The builder pod's log timestamp of the last line kept: a follower that reconnects resumes after it.
    log_until = models.CharField(max_length=40, blank=True, editable=False)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        indexes = [
            models.Index(fields=["deployment", "component", "-requested_at"]),
            models.Index(fields=["state", "due_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(digest="") | models.Q(digest__regex=r"^sha256:[0-9a-f]{64}$"),
                name="build_digest_format",
            ),
            models.CheckConstraint(
                condition=~models.Q(state="succeeded") | ~models.Q(digest=""), name="build_succeeded_has_digest"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.component}@{self.short_sha} of {self.deployment_id} ({self.state})"

    @property
    def short_sha(self) -> str:
        return self.commit_sha[:7]

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE

    @property
    def pinned_image(self) -> str:
        """The image reference workloads run: ``registry/path@sha256:…`` (empty until it succeeded)."""
        return f"{self.image}@{self.digest}" if self.digest else ""

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or timezone.now()
        return max((end - self.started_at).total_seconds(), 0.0)

    @property
    def progress_percent(self) -> int:
        if self.state == self.State.SUCCEEDED:
            return 100
        return int(100 * self.step / self.steps) if self.steps else 0
