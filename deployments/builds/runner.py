"""The cluster runner: a build's BuildKit Job, its log followed into the build's row.

`build_run` is what one execution of the `run_build` task does, and is safe to
run twice or concurrently (the sweeper may send a lost task again):

1. a queued build gets its Job (server-side apply, named by the build: applying
   again changes nothing), under the deployment's lease like every other write
   to the cluster for the deployment, and is marked running;
2. the Job pod's log is followed (`follow`, resuming after the last stored
   timestamp), parsed into steps (`cluster.buildkit`) and appended, bounded, to
   the row; reading needs no lease;
3. when the container ends, the digest is read from its termination message
   (buildctl's `--metadata-file`) and the build succeeds, or it fails with
   BuildKit's error. A cancelled build's Job is deleted.

Every state change goes through `builds.services` (compare-and-set on the row).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from deployments.builds import services
from deployments.builds.models import Build
from deployments.cluster import builds as manifests
from deployments.cluster import errors
from deployments.cluster.buildkit import BuildProgress, digest_from_metadata, split_timestamp
from deployments.cluster.client import Cluster
from deployments.cluster.connection import cluster_settings, get_cluster
from deployments.cluster.manifests import ManifestError
from deployments.leases import deployment_lease

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.2  # log text is written at most this often (a new step is written at once)


class StillBuilding(Exception):
    """The build's pod is not running yet, or its log stream ended early: look again shortly."""


def build_settings() -> manifests.BuildSettings:
    return manifests.BuildSettings(
        namespace=settings.BUILD_NAMESPACE,
        buildkit_image=settings.BUILDKIT_IMAGE,
        git_image=cluster_settings().git_image,
        registry_secret=settings.BUILD_REGISTRY_SECRET,
        cpu_request=settings.BUILD_CPU_REQUEST,
        cpu_limit=settings.BUILD_CPU_LIMIT,
        memory_request=settings.BUILD_MEMORY_REQUEST,
        memory_limit=settings.BUILD_MEMORY_LIMIT,
        deadline_seconds=settings.BUILD_DEADLINE_SECONDS,
        retention_seconds=settings.BUILD_RETENTION_SECONDS,
    )


def build_target(build: Build) -> manifests.BuildTarget:
    return manifests.BuildTarget(
        build_id=build.pk,
        deployment_id=build.deployment_id,
        project=build.project.slug,
        stage=build.deployment.stage,
        component=build.component,
        repository=build.repository,
        branch=build.branch,
        commit_sha=build.commit_sha,
        dockerfile=build.dockerfile,
        context=build.context,
        image=build.image,
        git_credentials=build.deployment.git_credentials(),
    )


def _load(build_id: int) -> Build | None:
    return Build.objects.select_related("deployment", "project").filter(pk=build_id).first()


def build_run(build_id: int, *, owner: str) -> str:
    """Move one cluster build forward as far as the cluster lets it now; returns the build's state.

    Raises `StillBuilding` (look again shortly), `LeaseBusy` and retryable `ClusterError`s.
    """
    build = _load(build_id)
    if build is None or build.runner != Build.Runner.CLUSTER:
        return "not ours"
    config = build_settings()
    cluster = get_cluster()
    if build.state == Build.State.CANCELLED:
        _delete_job(cluster, build, config)
        return build.state
    if build.state in Build.FINISHED:
        return build.state
    if build.state == Build.State.QUEUED:
        try:
            target = build_target(build)
        except ManifestError as error:  # the deploy key cannot be unsealed: no retry helps
            services.build_failed(build_id=build.pk, message=str(error))
            return Build.State.FAILED
        with deployment_lease(build.deployment_id, owner):
            cluster.apply(manifests.namespace(config))
            cluster.apply(manifests.network_policy(config))
            # The clone's credentials exist before its pod does; once the Job exists, it owns them.
            for secret in manifests.git_secrets(target, config):
                cluster.apply(secret)
            created = cluster.apply(manifests.job(target, config))
            for secret in manifests.git_secrets(target, config, job_uid=(created or {}).get("metadata", {}).get("uid")):
                cluster.apply(secret)
            Build.objects.filter(pk=build.pk).update(job_name=manifests.job_name(build.pk))
        try:
            build = services.build_started(build_id=build.pk)
        except services.BuildStateConflict:
            # Cancelled (or replaced) while its Job was being created: the Job goes again.
            build = _load(build_id)
            if build.state == Build.State.CANCELLED:
                _delete_job(cluster, build, config)
            return build.state
    return _follow(cluster, build, config, owner=owner)


def _claim(build_id: int, owner: str) -> bool:
    """Become the build's one follower: free, ours already, or its follower overdue (it died)."""
    now = timezone.now()
    return bool(
        Build.objects.filter(pk=build_id, state__in=Build.ACTIVE)
        .filter(Q(follower="") | Q(follower=owner) | Q(due_at__isnull=True) | Q(due_at__lt=now))
        .update(follower=owner, due_at=now + timedelta(seconds=settings.LOST_TASK_SECONDS))
    )


def _renew(build_id: int, owner: str) -> bool:
    """Still following: push ``due_at`` forward. False when another follower took over."""
    until = timezone.now() + timedelta(seconds=settings.LOST_TASK_SECONDS)
    return bool(Build.objects.filter(pk=build_id, follower=owner).update(due_at=until))


def _release(build_id: int, owner: str) -> None:
    Build.objects.filter(pk=build_id, follower=owner).update(follower="")


def _delete_job(cluster: Cluster, build: Build, config: manifests.BuildSettings) -> None:
    """Delete the build's Job and its pod (idempotent: already gone is fine)."""
    if cluster.delete("Job", manifests.job_name(build.pk), config.namespace, propagation="Background"):
        logger.info("deleted the Job of cancelled build %s", build.pk)


def _container_state(pod: dict, name: str, *, init: bool = False) -> dict:
    key = "initContainerStatuses" if init else "containerStatuses"
    for status in (pod.get("status") or {}).get(key) or ():
        if status.get("name") == name:
            return status.get("state") or {}
    return {}


def _job_failure(cluster: Cluster, build: Build, config: manifests.BuildSettings) -> str | None:
    job = cluster.get("Job", manifests.job_name(build.pk), config.namespace)
    if job is None:
        return "Its Job is gone from the cluster (deleted, or cleaned up after the retention period)"
    for condition in (job.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            if condition.get("reason") == "DeadlineExceeded":
                return f"It ran longer than BUILD_DEADLINE_SECONDS ({config.deadline_seconds} s) and was stopped"
            return condition.get("message") or condition.get("reason") or "Its Job failed"
    return None


def _begun(pod: dict) -> bool:
    """Whether the build container runs (or ran), or the clone before it failed."""
    clone = (_container_state(pod, "clone", init=True).get("terminated") or {}).get("exitCode", 0)
    state = _container_state(pod, "build")
    phase = (pod.get("status") or {}).get("phase")
    return clone != 0 or "running" in state or "terminated" in state or phase in ("Succeeded", "Failed")


def _started_pod(cluster: Cluster, build: Build, config: manifests.BuildSettings) -> dict | None:
    """The build's pod once its build container has started (or the clone failed), watched for up to
    POD_START_WAIT_SECONDS; else the pod as it is (None: not created yet). Event-driven: no polling."""
    selector = manifests.build_selector(build.pk)
    pods, version = cluster.list("Pod", namespace=config.namespace, label_selector=selector)
    pods.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
    latest = pods[-1] if pods else None
    if latest is not None and _begun(latest):
        return latest
    if _job_failure(cluster, build, config):
        return latest
    for event in cluster.watch(
        "Pod", resource_version=version, label_selector=selector, timeout_seconds=POD_START_WAIT_SECONDS
    ):
        if event.type in ("ADDED", "MODIFIED"):
            latest = event.object
            if _begun(latest):
                return latest
    return latest


POD_START_WAIT_SECONDS = 30


def _follow(cluster: Cluster, build: Build, config: manifests.BuildSettings, *, owner: str) -> str:
    pod = _started_pod(cluster, build, config)
    if pod is None:
        if problem := _job_failure(cluster, build, config):
            services.build_failed(build_id=build.pk, message=problem)
            return Build.State.FAILED
        raise StillBuilding("its pod does not exist yet")
    name = pod["metadata"]["name"]
    clone = _container_state(pod, "clone", init=True)
    if (clone.get("terminated") or {}).get("exitCode", 0) != 0:
        tail = _tail(cluster, name, config, container="clone")
        services.build_log_append(build_id=build.pk, text=tail)
        why = tail.strip().splitlines()[-1] if tail.strip() else "see its log"
        services.build_failed(build_id=build.pk, message=f"Cloning {build.short_sha} failed: {why}")
        return Build.State.FAILED
    state = _container_state(pod, "build")
    if not state or "waiting" in state:
        if problem := _job_failure(cluster, build, config):
            services.build_failed(build_id=build.pk, message=problem)
            return Build.State.FAILED
        raise StillBuilding(f"pod {name} is starting")
    if not _claim(build.pk, owner):
        return "followed by another task"
    try:
        build.refresh_from_db(fields=["step", "steps", "step_text", "log_until"])
        if not build.log_until:
            services.build_log_append(build_id=build.pk, text=_tail(cluster, name, config, container="clone"))
        cancelled, error = _stream(cluster, build, name, config, owner=owner)
    finally:
        _release(build.pk, owner)
    if cancelled is None:
        return "followed by another task"
    if cancelled:
        _delete_job(cluster, build, config)
        return Build.State.CANCELLED
    return _finish(cluster, build, config, error=error)


def _tail(cluster: Cluster, pod: str, config: manifests.BuildSettings, *, container: str) -> str:
    try:
        lines = cluster.pod_log(pod, config.namespace, container=container, tail_lines=50)
        return "".join(split_timestamp(line)[1] + "\n" for line in lines)
    except errors.ClusterError as error:
        return f"(the {container} log could not be read: {error})\n"


def _stream(
    cluster: Cluster, build: Build, pod: str, config: manifests.BuildSettings, *, owner: str
) -> tuple[bool | None, str]:
    """Follow the build container's log into the row until it ends. Returns (whether the build was
    cancelled meanwhile, or None when another follower took over; BuildKit's error if it reported one).

    A stream silent for a third of LOST_TASK_SECONDS (a long step) is opened again from the last line
    kept, renewing the claim: the sweeper never takes a quiet build for a lost one.
    """
    progress = BuildProgress(step=build.step, steps=build.steps, text=build.step_text)
    last = build.log_until
    buffer: list[str] = []
    flushed = time.monotonic()

    def flush(step_changed: bool) -> bool:
        nonlocal buffer, flushed
        services.build_log_append(build_id=build.pk, text="".join(buffer), until=last)
        buffer, flushed = [], time.monotonic()
        if step_changed and progress.steps:
            try:
                services.build_progress(build_id=build.pk, step=progress.step, steps=progress.steps, text=progress.text)
            except services.BuildStateConflict:
                return True
        return Build.objects.filter(pk=build.pk, state=Build.State.CANCELLED).exists()

    for _ in range(RECONNECTS):
        resume = last
        lines = cluster.pod_log(
            pod,
            config.namespace,
            container="build",
            follow=True,
            since_time=_seconds(resume),
            idle_timeout=max(settings.LOST_TASK_SECONDS / 3, 0.2),
        )
        try:
            for line in lines:
                stamp, text = split_timestamp(line)
                if resume and stamp and stamp <= resume:
                    continue  # sinceTime has whole seconds: the lines of that second come again
                rendered, changed = progress.feed(text)
                buffer.append(rendered)
                last = stamp or last
                if (changed or time.monotonic() - flushed >= FLUSH_SECONDS) and flush(changed):
                    return True, progress.error
        except errors.ClusterUnavailable:
            # Silent for a while, or cut: keep what was read, renew the claim and open it again.
            if buffer and flush(False):
                return True, progress.error
            if not _renew(build.pk, owner):
                return None, progress.error
            continue
        if buffer and flush(False):
            return True, progress.error
        return Build.objects.filter(pk=build.pk, state=Build.State.CANCELLED).exists(), progress.error
    raise StillBuilding(f"the log of {pod} was cut {RECONNECTS} times")


RECONNECTS = 1000  # a stream reopened every few seconds of silence, for a build up to its deadline


def _seconds(stamp: str) -> str | None:
    """``sinceTime`` takes whole seconds: the stored timestamp, cut to its second."""
    return f"{stamp[:19]}Z" if stamp else None


def _terminated(cluster: Cluster, build: Build, config: manifests.BuildSettings) -> dict | None:
    """The build container's `terminated` state. Its log ends as it exits, and the kubelet reports the
    exit a moment later: watch the pod for that moment (up to TERMINATION_WAIT_SECONDS), never sleep."""
    selector = manifests.build_selector(build.pk)
    pods, version = cluster.list("Pod", namespace=config.namespace, label_selector=selector)
    for pod in pods:
        if terminated := _container_state(pod, "build").get("terminated"):
            return terminated
    if not pods:
        return None
    for event in cluster.watch(
        "Pod", resource_version=version, label_selector=selector, timeout_seconds=TERMINATION_WAIT_SECONDS
    ):
        if event.type in ("ADDED", "MODIFIED") and (
            terminated := _container_state(event.object, "build").get("terminated")
        ):
            return terminated
        if event.type == "DELETED":
            return None
    return None


TERMINATION_WAIT_SECONDS = 10


def _finish(cluster: Cluster, build: Build, config: manifests.BuildSettings, *, error: str = "") -> str:
    terminated = _terminated(cluster, build, config)
    if terminated is None:
        if problem := _job_failure(cluster, build, config):
            services.build_failed(build_id=build.pk, message=problem)
            return Build.State.FAILED
        raise StillBuilding("the log ended while the build still runs")
    if terminated.get("exitCode") == 0:
        digest = digest_from_metadata(terminated.get("message") or "")
        if digest is None:
            services.build_failed(
                build_id=build.pk, message="BuildKit ended without reporting the pushed image's digest"
            )
            return Build.State.FAILED
        services.build_succeeded(build_id=build.pk, digest=digest)
        return Build.State.SUCCEEDED
    # BuildKit's own error; else, stopped from outside (the deadline), the Job's reason; else the exit code.
    reason = error or _job_failure(cluster, build, config) or f"BuildKit exited with code {terminated.get('exitCode')}"
    if terminated.get("reason") not in (None, "", "Error", "Completed"):
        reason += f" ({terminated['reason']})"
    services.build_failed(build_id=build.pk, message=reason)
    return Build.State.FAILED


def lost(build_id: int) -> bool:
    """Whether an active build has been at it longer than its deadline allows, plus a margin."""
    build = Build.objects.filter(pk=build_id).only("requested_at").first()
    limit = settings.BUILD_DEADLINE_SECONDS + 600
    return build is not None and (timezone.now() - build.requested_at).total_seconds() > limit
