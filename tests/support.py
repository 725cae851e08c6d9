"""Helpers for tests: free ports, child processes, waiting with a deadline, what a no-op apply keeps."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable

# Resets SIGINT to its default, then becomes the command (exec keeps the default).
_CTRL_C_DEFAULT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
)


def alive(pid: int) -> bool:
    """Whether a process of this machine (an emulated container's command runs here) still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python_command(*args: str) -> list[str]:
    """``python *args`` that stops on SIGINT as when started from a terminal.

    Started from a background job (``scripts/test &``, nohup), a process inherits
    SIGINT ignored and would not stop on the Ctrl-C the tests send it.
    """
    return [sys.executable, "-c", _CTRL_C_DEFAULT, sys.executable, *args]


def wait_for(check: Callable[[], object], *, timeout: float = 10, interval: float = 0.05, what: str = "condition"):
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except Exception as error:  # noqa: BLE001 - remembered and reported on timeout
            last_error = error
        else:
            if result:
                return result
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_error!r})" if last_error else "")
    )


def versions_a_noop_apply_keeps(cluster, namespace: str) -> dict:
    """What a no-op apply must leave alone: the resourceVersion of objects no controller writes
    to, and the generation (bumped only by spec changes) of those whose status controllers update."""
    from deployments.cluster.labels import OWNED_SELECTOR

    found = {}
    for kind in ("Namespace", "Secret", "Service", "NetworkPolicy", "StatefulSet", "Deployment", "Ingress"):
        items, _ = cluster.list(
            kind, namespace=None if kind == "Namespace" else namespace, label_selector=OWNED_SELECTOR
        )
        for item in items:
            meta = item["metadata"]
            stable = kind in ("Secret", "Service", "NetworkPolicy")
            found[(kind, meta["name"])] = meta["resourceVersion"] if stable else meta.get("generation")
    return found


BUILT_COMMIT = "b" * 40
BUILT_DIGEST = "sha256:" + "b" * 64


def built(deployment):
    """``deployment`` with its components built, as an external CI reports it through the build
    services (no cluster involved): staging and production run nothing until then. The rollout records
    the images as desired state; apply it as the test would otherwise (the worker, or `reconcile_run`).
    """
    from django.test import override_settings

    from deployments.builds import services as builds

    if builds.buildable_components(deployment):
        with override_settings(BUILD_RUNNER="external"):
            requested = builds.builds_request(deployment=deployment, trigger="api", commit_sha=BUILT_COMMIT)
        for build in requested:
            builds.build_succeeded(build_id=build.pk, digest=BUILT_DIGEST)
    deployment.refresh_from_db()
    return deployment


def post_team_memberships(client, team, *, roles=None, delete=()):
    """Submit the team's admin change page with members' roles changed (``roles``: user id -> role) or deleted
    (``delete``: user ids); every other member keeps their role."""
    from django.urls import reverse

    from deployments.models import Membership

    memberships = list(Membership.objects.filter(team=team).order_by("pk"))
    data = {
        "name": team.name,
        "slug": team.slug,
        "memberships-TOTAL_FORMS": str(len(memberships)),
        "memberships-INITIAL_FORMS": str(len(memberships)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for index, membership in enumerate(memberships):
        data |= {
            f"memberships-{index}-id": str(membership.pk),
            f"memberships-{index}-team": str(team.pk),
            f"memberships-{index}-user": str(membership.user_id),
            f"memberships-{index}-role": (roles or {}).get(membership.user_id, membership.role),
        }
        if membership.user_id in delete:
            data[f"memberships-{index}-DELETE"] = "on"
    return client.post(reverse("admin:deployments_team_change", args=[team.pk]), data)


def observe(deployment) -> str:
    """Do once what the watcher does for one deployment: list our objects, compute and store its
    status (which settles the operations waiting for it). Returns the stored health."""
    from deployments import statuses
    from deployments.cluster.connection import get_cluster
    from deployments.models import DeploymentStatus
    from deployments.watcher import INFORMERS, ObjectCache

    cluster, cache = get_cluster(), ObjectCache()
    for kind, selector in INFORMERS:
        cache.replace(kind, cluster.list(kind, label_selector=selector)[0])
    statuses.status_store(deployment.pk, cache.observation(deployment.pk, deployment.namespace))
    return DeploymentStatus.objects.get(deployment=deployment).health


def observed_until_done(operation, *, timeout: float = 30):
    """Observe the operation's deployment until the operation ended; returns it, reloaded."""
    from deployments.models import Operation

    def ended():
        observe(operation.deployment)
        current = Operation.objects.get(pk=operation.pk)
        return not current.is_active and current

    return wait_for(ended, timeout=timeout, interval=0.1, what=f"{operation} to end")


def applied_deployment(*, project, actor, stage: str = "development", name: str = "dev"):
    """A new deployment of ``project``, applied to the cluster as the worker applies it."""
    from deployments import lifecycle, services

    deployment = services.deployment_create(project=project, name=name, stage=stage, actor=actor)
    assert lifecycle.reconcile_run(deployment.pk, owner="test") == "applied"
    deployment.refresh_from_db()
    return deployment
