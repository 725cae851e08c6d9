"""Asking each deployment's app for its own status: the template's `status_url`.

The watcher runs `poll_round` every APP_STATUS_SECONDS in one thread, while it
holds the `app-status` lease (one poller per installation, like the CPU sampler).
Each request goes through the API server's service proxy
(`/api/v1/namespaces/{ns}/services/{component}:{port}/proxy/{path}`), with the
process's cluster credentials: it works wherever Diploi reaches the API server (in
the cluster, outside it, the emulator), needs no route into tenant networks, and
is authorized by RBAC (`services/proxy` get) and audited like every other request.
At most APP_STATUS_CONCURRENCY requests run at once, each with a timeout of
APP_STATUS_TIMEOUT_SECONDS, reading at most APP_STATUS_MAX_BYTES.

What an app answered is stored (`AppStatusReport`) only when it changed; the
changed deployments are returned so the watcher recomputes their status trees,
which publishes them like any other status change.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deployments.appstatus.models import AppStatusReport
from deployments.appstatus.report import Answer, read_answer
from deployments.cluster import errors
from deployments.cluster.client import Cluster
from deployments.models import Deployment, DeploymentState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """One deployment's status URL, as the service proxy reaches it."""

    deployment_id: int
    namespace: str
    service: str
    port: int
    path: str


def status_targets() -> list[Target]:
    """The status URLs to ask now: running deployments (enabled, applied, not being deleted) whose
    template declares one. One query (the parsed spec is cached per template version)."""
    deployments = (
        Deployment.objects.live()
        .filter(enabled=True, applied_generation__gt=0)
        .exclude(state=DeploymentState.DELETING)
        .select_related("template_version")
        .defer("template_version__spec_data", "template_version__source")
        .order_by("pk")
    )
    targets = []
    for deployment in deployments:
        target = deployment.spec.status_target
        if target is not None:
            service, port, path = target
            targets.append(Target(deployment.pk, deployment.namespace, service, port, path))
    return targets


def status_fetch(cluster: Cluster, target: Target) -> Answer | None:
    """Ask one status URL. None when the API server itself cannot be reached or fails (the whole
    cluster's status says so; the app is not to blame, and what it last said stands). Read-only:
    safe to repeat."""
    max_bytes = settings.APP_STATUS_MAX_BYTES
    try:
        response = cluster.service_proxy_get(
            target.namespace,
            target.service,
            target.port,
            target.path,
            timeout=settings.APP_STATUS_TIMEOUT_SECONDS,
            max_bytes=max_bytes,
        )
    except errors.ClusterError as error:
        logger.debug("app status of deployment %s not asked: %s", target.deployment_id, error)
        return None
    answer = read_answer(
        response.status,
        response.content_type,
        response.body,
        truncated=response.truncated,
        max_bytes=max_bytes,
        timed_out=response.timed_out,
    )
    if answer.api_failed:
        logger.debug("app status of deployment %s not asked: %s", target.deployment_id, answer.error)
        return None
    return answer


def _next_report(previous: AppStatusReport | None, answer: Answer, now: datetime) -> dict:
    """The row's fields after ``answer``: the failure clock starts at the first failure that is the app's."""
    if not answer.error:
        return {"items": _with_pending_since(previous, answer.items, now), "error": "", "failing_since": None}
    if answer.unserved:
        failing_since = None
    else:
        failing_since = previous.failing_since if previous is not None and previous.failing_since else now
    return {"items": [], "error": answer.error[:500], "failing_since": failing_since}


def _with_pending_since(previous: AppStatusReport | None, items, now: datetime) -> list[dict]:
    """The items, each pending one stamped with since when it has been pending (kept from ``previous``):
    a pending check is progress for a while, not a fault (`cluster.status`)."""
    before = {item.get("identifier"): item for item in (previous.items if previous is not None else [])}
    stamped = []
    for item in items:
        item = dict(item)
        if item.get("pending"):
            earlier = before.get(item["identifier"]) or {}
            item["pending_since"] = earlier.get("pending_since") or now.isoformat()
        stamped.append(item)
    return stamped


def report_record(deployment_id: int, previous: AppStatusReport | None, answer: Answer, *, now: datetime) -> bool:
    """Store what the status URL answered when it differs from ``previous``. True when it changed.
    Idempotent: the same answer again writes nothing."""
    fields = _next_report(previous, answer, now)
    if previous is not None and all(getattr(previous, name) == value for name, value in fields.items()):
        return False
    with transaction.atomic():
        if not Deployment.objects.filter(pk=deployment_id).exclude(state=DeploymentState.DELETED).exists():
            return False
        AppStatusReport.objects.update_or_create(deployment_id=deployment_id, defaults={**fields, "changed_at": now})
    return True


def lease_seconds() -> float:
    """How long the poller's lease must last: three intervals, plus a round in which every app is
    silent until its timeout (so a slow round never lets a second poller in)."""
    running = Deployment.objects.live().filter(enabled=True).count()
    batches = math.ceil(running / max(1, settings.APP_STATUS_CONCURRENCY))
    return settings.APP_STATUS_SECONDS * 3 + batches * settings.APP_STATUS_TIMEOUT_SECONDS


def poll_round(cluster: Cluster, *, now: datetime | None = None) -> set[int]:
    """Ask every status URL once (at most APP_STATUS_CONCURRENCY at a time) and store what changed.
    Returns the deployments whose report changed (or was dropped: disabled, deleted, no status URL)."""
    targets = status_targets()
    wanted = {target.deployment_id for target in targets}
    reports = {report.deployment_id: report for report in AppStatusReport.objects.all()}
    changed = set(reports) - wanted
    if changed:
        AppStatusReport.objects.filter(deployment_id__in=changed).delete()
    if not targets:
        return changed
    with ThreadPoolExecutor(
        max_workers=max(1, min(settings.APP_STATUS_CONCURRENCY, len(targets))), thread_name_prefix="app-status"
    ) as pool:
        answers = list(pool.map(lambda target: status_fetch(cluster, target), targets))
    now = now or timezone.now()
    for target, answer in zip(targets, answers, strict=True):
        if answer is None:
            continue
        if report_record(target.deployment_id, reports.get(target.deployment_id), answer, now=now):
            changed.add(target.deployment_id)
    return changed
