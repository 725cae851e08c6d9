"""Prometheus metrics of Diploi's processes.

Each process exposes its own on `HEALTH_PORT` (`/metrics`, see
`diploi_site.health_server`). With ``PROMETHEUS_MULTIPROC_DIR`` set (several
processes in one pod, e.g. a prefork worker), prometheus-client keeps the
values in files there and `/metrics` adds them up.

What is measured: HTTP request latencies by route, Celery tasks by name and
outcome, reconcile durations, the watcher's lag from a cluster event to the
stored status, open websockets, and (read from the database when scraped)
deployments by health.
"""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

HTTP_REQUEST_SECONDS = Histogram(
    "diploi_http_request_duration_seconds",
    "Time to answer an HTTP request, by route (the URL's name), method and status code.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TASKS = Counter(
    "diploi_tasks_total",
    "Celery task executions by task name and outcome (succeeded, failed, retried, rejected).",
    ["task", "outcome"],
)
RECONCILE_SECONDS = Histogram(
    "diploi_reconcile_duration_seconds",
    "Time one reconcile took (render, apply, prune), by outcome.",
    ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
WATCHER_EVENT_LAG_SECONDS = Histogram(
    "diploi_watcher_event_lag_seconds",
    "From a cluster event reaching the watcher to its deployment's status being recomputed and stored.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SSH_CONNECTIONS = Gauge(
    "diploi_ssh_connections",
    "Open connections to this SSH gateway process.",
    multiprocess_mode="livesum",
)
SSH_AUTH_REFUSALS = Counter(
    "diploi_ssh_auth_refusals_total",
    "SSH connections or keys refused, by why: unregistered (key), refused (authorize), rate_limited.",
    ["reason"],
)
WEBSOCKETS = Gauge(
    "diploi_websocket_connections",
    "Open websocket connections, by page kind (team, project, deployment).",
    ["page"],
    multiprocess_mode="livesum",
)

FRAGMENT_RENDERS = Counter(
    "diploi_fragment_renders_total",
    "Live fragments rendered for websocket pages, by page kind (after a change, one render serves "
    "every socket of the process showing the same deployment tab with the same role).",
    ["page"],
)
FRAGMENT_SENDS = Counter(
    "diploi_fragment_sends_total",
    "Live fragments sent to websocket pages, by page kind.",
    ["page"],
)


class DeploymentHealthCollector(Collector):
    """Live deployments by health, read from the database at each scrape (a single GROUP BY)."""

    def describe(self):
        # Registering asks for the names: answer without touching the database.
        yield GaugeMetricFamily("diploi_deployments", "Live deployments by health.", labels=["health"])

    def collect(self):
        from django.db.models import Count

        from deployments.models import Deployment, Health

        family = GaugeMetricFamily("diploi_deployments", "Live deployments by health.", labels=["health"])
        counts = dict(
            Deployment.objects.live()
            .values_list("status__health")
            .annotate(n=Count("pk"))
            .values_list("status__health", "n")
        )
        for health in Health.values:
            family.add_metric([health], counts.get(health, 0) + (counts.get(None, 0) if health == "unknown" else 0))
        yield family


REGISTRY.register(DeploymentHealthCollector())


def exposition() -> tuple[bytes, str]:
    """This process's metrics in the Prometheus text format, and its content type."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    # Several processes share the directory: add their files up, plus what is read at scrape time.
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(DeploymentHealthCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


class RequestMetricsMiddleware:
    """Times every request and records it under its URL's name (never the raw path: ids would explode it)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.view_name if match else "") or "unmatched"
        HTTP_REQUEST_SECONDS.labels(route, request.method, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


_task_signals_connected = False


def connect_task_signals() -> None:
    """Count every Celery task's outcome. Idempotent (a worker is "ready" again after each reconnect)."""
    global _task_signals_connected
    if _task_signals_connected:
        return
    _task_signals_connected = True
    from celery import signals

    def outcome(name: str):
        def handler(sender=None, **_):
            TASKS.labels(getattr(sender, "name", None) or str(sender), name).inc()

        return handler

    def rejected(message=None, **_):
        # Sent by the consumer for a message it cannot take (e.g. an unknown task): name it from the headers.
        headers = getattr(message, "headers", None) or {}
        TASKS.labels(headers.get("task", "unknown"), "rejected").inc()

    signals.task_success.connect(outcome("succeeded"), weak=False)
    signals.task_failure.connect(outcome("failed"), weak=False)
    signals.task_retry.connect(outcome("retried"), weak=False)
    signals.task_rejected.connect(rejected, weak=False)
