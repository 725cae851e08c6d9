"""Liveness and readiness of Diploi's processes, for Kubernetes probes and load balancers.

Alive (`/healthz`): the process answers. Ready (`/readyz`): what it needs
answers: the database, Redis when configured (the broker and the channel
layer), and, for workers, watchers and the SSH gateway, the cluster they act
on. The web process only describes what it finds in the cluster, so a cluster
outage does not take the dashboard out of its load balancer.

The web process serves both on its own port (`HealthProbeMiddleware` answers
them before host validation and the HTTPS redirect: kubelets send the pod's IP
as Host, over plain HTTP). Every process can also serve them, with
`/metrics`, on `HEALTH_PORT` (`diploi_site.health_server`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_safe

from diploi_site.process import process_name

PROBE_PATHS = ("/healthz", "/readyz")
# Processes that act on the cluster: they are not ready while it cannot be reached.
_NEEDS_CLUSTER = {"worker", "watcher", "ssh-gateway", "standalone"}
_CHECK_TIMEOUT_SECONDS = 3


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001 - any failure means not ready; its text says why
        return Check("database", False, _short(error))
    return Check("database", True)


def check_redis() -> Check | None:
    if not settings.REDIS_URL:
        return None
    import redis

    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=_CHECK_TIMEOUT_SECONDS, socket_connect_timeout=_CHECK_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    except Exception as error:  # noqa: BLE001
        return Check("redis", False, _short(error))
    finally:
        client.close()
    return Check("redis", True)


def check_cluster() -> Check:
    from deployments.cluster.connection import get_cluster
    from deployments.cluster.errors import ClusterError

    try:
        get_cluster().request("GET", "/version", timeout=_CHECK_TIMEOUT_SECONDS)
    except ClusterError as error:
        return Check("cluster", False, _short(error))
    return Check("cluster", True)


def readiness(process: str | None = None) -> list[Check]:
    """Every check this process's readiness depends on, in order."""
    process = process or process_name()
    checks = [check_database()]
    if (redis_check := check_redis()) is not None:
        checks.append(redis_check)
    if process in _NEEDS_CLUSTER:
        checks.append(check_cluster())
    return checks


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:200]


# ----------------------------------------------------------------------------- HTTP


@require_safe
def healthz(request) -> HttpResponse:
    """Alive: the process answers (nothing else is checked, so a database outage does not restart it)."""
    return HttpResponse("ok", content_type="text/plain")


@require_safe
def readyz(request) -> HttpResponse:
    """Ready: 200 ``ok``, or 503 naming each failed check and why (JSON with ``?verbose``)."""
    checks = readiness()
    ready = all(check.ok for check in checks)
    if "verbose" in request.GET:
        body = {"ready": ready, "process": process_name(), "checks": [check.__dict__ for check in checks]}
        return JsonResponse(body, status=200 if ready else 503)
    if ready:
        return HttpResponse("ok", content_type="text/plain")
    failed = "\n".join(f"{check.name}: {check.detail}" for check in checks if not check.ok)
    return HttpResponse(f"not ready\n{failed}\n", status=503, content_type="text/plain")


class HealthProbeMiddleware:
    """Answers GET /healthz and /readyz first: before host validation and the HTTPS redirect."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method in ("GET", "HEAD") and request.path_info in PROBE_PATHS:
            return healthz(request) if request.path_info == "/healthz" else readyz(request)
        return self.get_response(request)
