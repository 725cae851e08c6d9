"""Writes to builds. The cluster runner, the external CI API, the webhook, views and the admin call these.

Every service is keyword-only and atomic. A state change is a compare-and-set
`UPDATE` on the build's row (its state must still be one the change starts
from), so two reporters, a redelivered task or a cancel racing a success
never move a build backwards; a change that no longer applies raises
`BuildStateConflict` (a `ValidationError`), one that was already made returns
the build unchanged (idempotent). Each writes an audit row and tells live
pages on commit, after the stored status followed the row (`statuses.status_builds_changed`).
A succeeded build may roll the deployment out (`rollout`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from deployments import events, statuses
from deployments.builds.commits import CommitUnresolved, commit_subject, resolve_branch_head
from deployments.builds.models import COMMIT_SHA, DIGEST, Build
from deployments.cluster.manifests import ManifestError
from deployments.dispatch import send_on_commit
from deployments.models import Deployment, DeploymentState, Operation, record_activity
from deployments.services import branch_problems

logger = logging.getLogger(__name__)

LIVE = (DeploymentState.CREATING, DeploymentState.RUNNING, DeploymentState.RESTARTING, DeploymentState.FAILED)


class BuildStateConflict(ValidationError):
    """The build is no longer in a state this change starts from (e.g. a report for a cancelled build)."""


# ----------------------------------------------------------------------------- requesting


def buildable_components(deployment: Deployment) -> list[str]:
    """The components of ``deployment`` built from its repository: none outside a build stage."""
    if deployment.spec.mode(deployment.stage) != "build":
        return []
    return [c.id for c in deployment.spec.components if c.build is not None]


def image_repository(deployment: Deployment, component: str) -> str:
    """Where a component's images are pushed: ``REGISTRY/<project>/<component>`` (tagged by commit)."""
    return f"{settings.REGISTRY.rstrip('/')}/{deployment.project.slug}/{component}"


def runner_for(deployment: Deployment) -> str:
    """The project's own choice of builder (`Project.build_runner`, "" = default), else BUILD_RUNNER."""
    return getattr(deployment.project, "build_runner", "") or settings.BUILD_RUNNER


def builds_request(
    *,
    deployment: Deployment,
    trigger: str,
    triggered_by=None,
    commit_sha: str | None = None,
    commit_message: str = "",
    components: list[str] | None = None,
) -> list[Build]:
    """Queue one build per component (default: every built component) of ``commit_sha`` (whose
    message, when the caller knows it, is ``commit_message``: its first line is kept), or of the
    branch head resolved now (`commits.resolve_branch_head`, which fetches its message too). A newer
    build cancels the deployment's older queued or running build of the same component. Cluster
    builds are sent to the worker on commit.

    Raises ValidationError when the deployment has nothing to build, a component is unknown, the
    commit is malformed, or the branch head cannot be resolved; nothing is written then.
    """
    if trigger not in Build.Trigger.values:
        raise ValidationError(f"Unknown build trigger “{trigger}”.")
    if commit_sha is not None:
        commit_sha = commit_sha.strip().lower()
        if not COMMIT_SHA.match(commit_sha):
            raise ValidationError("A commit is its full SHA: 40 hexadecimal digits.")
    with transaction.atomic():
        # Serializes requests for one deployment: the newest request's builds are the ones that stay.
        # Only its own row ("self"): locking the joined project and team would serialize (and
        # deadlock) every deployment of the project.
        deployment = (
            Deployment.objects.select_for_update(of=("self",))
            .select_related("project__team", "template_version")
            .get(pk=deployment.pk)
        )
        if deployment.state not in LIVE:
            raise ValidationError("This deployment is being deleted.")
        buildable = buildable_components(deployment)
        if not buildable:
            raise ValidationError(
                f"{deployment.get_stage_display()} of {deployment.project.template.name} builds nothing: "
                "it runs the template's images, or clones the code in development."
            )
        wanted = list(dict.fromkeys(components)) if components else buildable
        unknown = [c for c in wanted if c not in buildable]
        if unknown:
            raise ValidationError(f"There is no built component “{unknown[0]}” (built: {', '.join(buildable)}).")
        if problems := branch_problems(deployment.branch):
            raise ValidationError(problems)
        message, simulated = commit_subject(commit_message), False
        if commit_sha is None:
            try:
                commit = resolve_branch_head(
                    deployment.repository_url, deployment.branch, credentials=deployment.git_credentials()
                )
            except (CommitUnresolved, ManifestError) as error:
                raise ValidationError(f"Cannot resolve branch {deployment.branch}: {error}.") from None
            commit_sha, message, simulated = commit.sha, commit_subject(commit.message), commit.simulated
        actor = triggered_by if triggered_by is not None and triggered_by.is_authenticated else None
        runner = runner_for(deployment)
        # On the cluster emulator our own builder builds nothing real: say so on every such build.
        simulated = simulated or (runner == Build.Runner.CLUSTER and settings.CLUSTER_SIMULATED)
        builds = []
        for component_id in wanted:
            build_spec = deployment.spec.component(component_id).build
            build = Build.objects.create(
                deployment=deployment,
                project=deployment.project,
                component=component_id,
                repository=deployment.repository_url,
                branch=deployment.branch,
                commit_sha=commit_sha,
                commit_message=message,
                simulated=simulated,
                dockerfile=build_spec.dockerfile,
                context=build_spec.context,
                image=image_repository(deployment, component_id),
                runner=runner,
                trigger=trigger,
                triggered_by=actor,
            )
            builds.append(build)
            # Locked, so a report racing this (the old build succeeding) is seen before it is cancelled.
            older = (
                Build.objects.select_for_update()
                .filter(deployment=deployment, component=component_id, state__in=Build.ACTIVE)
                .exclude(pk=build.pk)
            )
            for old in older:
                _cancel(old, f"Replaced by build #{build.pk} of {build.short_sha}", actor=actor)
        record_activity(
            action="build.requested",
            message=f"Build of {', '.join(wanted)} at {commit_sha[:7]} requested "
            f"({Build.Trigger(trigger).label.lower()}){' — simulated commit' if simulated else ''}",
            actor=actor,
            deployment=deployment,
            builds=[b.pk for b in builds],
            commit=commit_sha,
        )
        for build in builds:
            if build.runner == Build.Runner.CLUSTER:
                _send_runner(build.pk)
        statuses.status_builds_changed(deployment)
    return builds


def _send_runner(build_id: int) -> None:
    from deployments.builds.tasks import run_build

    send_on_commit(run_build, build_id)


# ----------------------------------------------------------------------------- reports


def _locked(build_id: int) -> Build:
    """The build, its row locked, after its deployment's row: every service locks the deployment first
    (`builds_request` and `rollout` do), so two of them never wait for each other in a circle."""
    deployment_id = Build.objects.filter(pk=build_id).values_list("deployment_id", flat=True).first()
    if deployment_id is None:
        raise ValidationError(f"There is no build {build_id}.")
    list(Deployment.objects.select_for_update(of=("self",)).filter(pk=deployment_id).values_list("pk", flat=True))
    return Build.objects.select_for_update(of=("self",)).select_related("deployment__project__team").get(pk=build_id)


def _conflict(build: Build, change: str) -> BuildStateConflict:
    return BuildStateConflict(f"Build {build.pk} is {build.state}: it cannot be {change}.")


def _move(build: Build, *, from_states, **fields) -> None:
    """Compare-and-set: write ``fields`` only while the build is still in ``from_states``."""
    moved = Build.objects.filter(pk=build.pk, state__in=from_states).update(**fields)
    if not moved:  # the row is locked by the caller: this only happens if a caller forgot to check
        raise _conflict(build, "changed")
    for name, value in fields.items():
        setattr(build, name, value)


def _due() -> datetime:
    return timezone.now() + timedelta(seconds=settings.LOST_TASK_SECONDS)


@transaction.atomic
def build_started(*, build_id: int, run_url: str = "", external_id: str = "") -> Build:
    """A builder took the build: queued → running. Idempotent for a running build (the run URL and
    external id are updated when given). Raises BuildStateConflict for a finished build."""
    build = _locked(build_id)
    if build.state in Build.FINISHED:
        raise _conflict(build, "started")
    fields = {"due_at": _due()}
    if run_url:
        fields["run_url"] = run_url[:500]
    if external_id:
        fields["external_id"] = external_id[:200]
    first = build.state == Build.State.QUEUED
    if first:
        fields.update(state=Build.State.RUNNING, started_at=timezone.now())
    _move(build, from_states=Build.ACTIVE, **fields)
    if first:
        record_activity(
            action="build.started",
            message=f"Build of {build.component} at {build.short_sha} started",
            deployment=build.deployment,
            build=build.pk,
        )
    statuses.status_builds_changed(build.deployment)
    return build


@transaction.atomic
def build_progress(*, build_id: int, step: int, steps: int, text: str) -> Build:
    """The build is on step ``step`` of ``steps``: recorded on the row (a queued build starts running).
    Idempotent. Raises ValidationError for an impossible step, BuildStateConflict for a finished build."""
    if not isinstance(step, int) or not isinstance(steps, int) or steps < 1 or not 0 <= step <= steps:
        raise ValidationError("The step must be a whole number from 0 to steps, and steps at least 1.")
    build = _locked(build_id)
    if build.state in Build.FINISHED:
        raise _conflict(build, "given progress")
    fields = {"step": step, "steps": steps, "step_text": str(text)[:300], "due_at": _due()}
    if build.state == Build.State.QUEUED:
        fields.update(state=Build.State.RUNNING, started_at=timezone.now())
    _move(build, from_states=Build.ACTIVE, **fields)
    statuses.status_builds_changed(build.deployment)
    return build


@transaction.atomic
def build_succeeded(*, build_id: int, digest: str) -> Build:
    """The image was pushed with ``digest`` ("sha256:<64 hex>"): the build succeeded. When every
    component's build of its commit has now succeeded and that commit is newer than the one running,
    the deployment rolls out to it. Idempotent for the same digest."""
    digest = (digest or "").strip()
    if not DIGEST.match(digest):
        raise ValidationError("The digest must be “sha256:” followed by 64 lowercase hexadecimal digits.")
    build = _locked(build_id)
    if build.state == Build.State.SUCCEEDED and build.digest == digest:
        return build
    if build.state in Build.FINISHED:
        raise _conflict(build, "marked succeeded")
    now = timezone.now()
    _move(
        build,
        from_states=Build.ACTIVE,
        state=Build.State.SUCCEEDED,
        digest=digest,
        finished_at=now,
        started_at=build.started_at or now,
        step=build.steps or build.step,
        due_at=None,
    )
    record_activity(
        action="build.succeeded",
        message=f"Build of {build.component} at {build.short_sha} succeeded: {digest[:19]}…",
        deployment=build.deployment,
        build=build.pk,
        digest=digest,
    )
    rollout(deployment_id=build.deployment_id)
    statuses.status_builds_changed(build.deployment)
    return build


@transaction.atomic
def build_failed(*, build_id: int, message: str) -> Build:
    """The build failed with ``message``. The deployment keeps running its last good build.
    Idempotent for a failed build; raises BuildStateConflict for a succeeded or cancelled one."""
    message = (str(message or "").strip() or "The build failed")[:2000]
    build = _locked(build_id)
    if build.state == Build.State.FAILED:
        return build
    if build.state in Build.FINISHED:
        raise _conflict(build, "marked failed")
    _move(
        build,
        from_states=Build.ACTIVE,
        state=Build.State.FAILED,
        message=message,
        finished_at=timezone.now(),
        due_at=None,
    )
    record_activity(
        action="build.failed",
        message=f"Build of {build.component} at {build.short_sha} failed: {message}",
        deployment=build.deployment,
        build=build.pk,
    )
    statuses.status_builds_changed(build.deployment)
    return build


@transaction.atomic
def build_cancel(*, build_id: int, reason: str) -> Build:
    """Cancel a queued or running build (its Job, if any, is deleted by the runner). Idempotent for a
    cancelled build; raises BuildStateConflict for a finished one."""
    build = _locked(build_id)
    if build.state == Build.State.CANCELLED:
        return build
    if build.state in Build.FINISHED:
        raise _conflict(build, "cancelled")
    _cancel(build, (str(reason or "").strip() or "Cancelled")[:2000])
    statuses.status_builds_changed(build.deployment)
    return build


def _cancel(build: Build, reason: str, *, actor=None) -> None:
    _move(
        build,
        from_states=Build.ACTIVE,
        state=Build.State.CANCELLED,
        message=reason,
        finished_at=timezone.now(),
        due_at=None,
    )
    record_activity(
        action="build.cancelled",
        message=f"Build of {build.component} at {build.short_sha} cancelled: {reason}",
        actor=actor,
        deployment=build.deployment,
        build=build.pk,
    )
    if build.runner == Build.Runner.CLUSTER and build.job_name:
        _send_runner(build.pk)  # the runner deletes the cancelled build's Job


def build_log_append(*, build_id: int, text: str, until: str = "") -> None:
    """Append ``text`` to the build's stored log, keeping at most BUILD_LOG_MAX_BYTES (the tail).
    ``until``: the log timestamp of its last line, where a reconnecting follower resumes."""
    if not text and not until:
        return
    limit = settings.BUILD_LOG_MAX_BYTES
    with transaction.atomic():
        build = Build.objects.select_for_update().filter(pk=build_id).only("log", "log_truncated").first()
        if build is None:
            return
        log, truncated = build.log + text, build.log_truncated
        if len(log.encode()) > limit:
            tail = log.encode()[-limit:].decode(errors="ignore")
            log, truncated = tail[tail.find("\n") + 1 :], True
        fields = {"log": log, "log_truncated": truncated, "due_at": _due()}
        if until:
            fields["log_until"] = until
        Build.objects.filter(pk=build_id).update(**fields)


# ----------------------------------------------------------------------------- rollout


def rollout_target(deployment: Deployment) -> tuple[str, dict[str, str]] | None:
    """(commit, {component: pinned image}) of the newest commit for which every built component's
    build succeeded, or None when there is none yet. Reads Build rows only."""
    buildable = set(buildable_components(deployment))
    if not buildable:
        return None
    succeeded = Build.objects.filter(
        deployment=deployment, state=Build.State.SUCCEEDED, component__in=buildable
    ).order_by("-requested_at", "-pk")
    by_commit: dict[str, dict[str, Build]] = {}
    for build in succeeded.only("commit_sha", "component", "image", "digest", "requested_at"):
        by_commit.setdefault(build.commit_sha, {}).setdefault(build.component, build)
    # Commits in the order their newest build was requested: dicts keep insertion order.
    for commit, builds in by_commit.items():
        if set(builds) >= buildable:
            return commit, {component: builds[component].pinned_image for component in sorted(buildable)}
    return None


def rollout(*, deployment_id: int) -> bool:
    """Roll the deployment out to its newest fully built commit, if it is not running it already:
    records the images as desired state (the save hook reconciles on commit), an apply Operation
    and an audit row naming old and new digests. Idempotent. True when it rolled out."""
    with transaction.atomic():
        deployment = (
            Deployment.objects.select_for_update(of=("self",))
            .select_related("project__team", "template_version")
            .get(pk=deployment_id)
        )
        if deployment.state not in LIVE:
            return False
        target = rollout_target(deployment)
        if target is None:
            return False
        commit, images = target
        if images == deployment.built_images and commit == deployment.built_commit:
            return False
        newer = Build.objects.filter(deployment=deployment, commit_sha=commit).order_by("-requested_at").first()
        current = Build.objects.filter(deployment=deployment, commit_sha=deployment.built_commit).first()
        if current is not None and newer is not None and current.requested_at > newer.requested_at:
            return False  # never roll back to an older commit because one of its builds finished late
        changes = [
            f"{component} {_short(deployment.built_images.get(component))} → {_short(image)}"
            for component, image in images.items()
            if deployment.built_images.get(component) != image
        ]
        old_commit = deployment.built_commit
        deployment.built_images, deployment.built_commit = images, commit
        deployment.save(update_fields=["built_images", "built_commit"])
        summary = (
            f"Rollout of {commit[:7]}" + (f" (was {old_commit[:7]})" if old_commit else "") + ": " + "; ".join(changes)
        )
        Operation.objects.create(
            deployment=deployment,
            kind=Operation.Kind.RECONCILE,
            generation=deployment.desired_generation,
            message=summary,
        )
        record_activity(
            action="deployment.rolled_out",
            message=summary,
            deployment=deployment,
            commit=commit,
            previous_commit=old_commit,
            images=images,
        )
        events.publish_deployment_changed(deployment)
        return True


def _short(image: str | None) -> str:
    if not image:
        return "none"
    _, _, digest = image.partition("@")
    return digest[:19] if digest else image


# ----------------------------------------------------------------------------- sweeper


def lost_builds(now) -> list[int]:
    """Active cluster builds whose runner is overdue (it renews `due_at` while it works): lost."""
    return list(
        Build.objects.filter(runner=Build.Runner.CLUSTER, state__in=Build.ACTIVE)
        .filter(Q(due_at__isnull=True) | Q(due_at__lt=now))
        .values_list("pk", flat=True)
    )


def builds_first_request(*, deployment: Deployment, actor) -> list[Build]:
    """The first builds of a new staging/production deployment (called inside `deployment_create`).

    When the branch head cannot be resolved, the deployment is still created: each component gets a
    failed build saying why (nothing runs until a build succeeds; "Deploy latest" tries again).
    """
    if not buildable_components(deployment):
        return []
    try:
        with transaction.atomic():
            return builds_request(deployment=deployment, trigger=Build.Trigger.CREATED, triggered_by=actor)
    except ValidationError as error:
        message = " ".join(error.messages)
    now = timezone.now()
    builds = [
        Build.objects.create(
            deployment=deployment,
            project=deployment.project,
            component=component_id,
            repository=deployment.repository_url,
            branch=deployment.branch,
            commit_sha="",
            dockerfile=deployment.spec.component(component_id).build.dockerfile,
            context=deployment.spec.component(component_id).build.context,
            image=image_repository(deployment, component_id),
            runner=runner_for(deployment),
            trigger=Build.Trigger.CREATED,
            triggered_by=actor if actor is not None and actor.is_authenticated else None,
            state=Build.State.FAILED,
            message=message,
            finished_at=now,
            due_at=None,
        )
        for component_id in buildable_components(deployment)
    ]
    record_activity(action="build.failed", message=f"The first build could not start: {message}", deployment=deployment)
    return builds


def builds_cancel_all(*, deployment: Deployment, reason: str) -> list[int]:
    """Cancel every queued or running build of ``deployment`` (it is being deleted). Idempotent."""
    cancelled = []
    for build in Build.objects.select_for_update().filter(deployment=deployment, state__in=Build.ACTIVE):
        _cancel(build, reason)
        cancelled.append(build.pk)
    if cancelled:
        statuses.status_builds_changed(deployment)
    return cancelled
