"""CPU load and memory per deployment: sampled from the metrics API, kept at three resolutions.

- raw samples (every CPU_SAMPLE_SECONDS) for the last minute, kept 10 minutes;
- one-minute averages for the last hour, kept 2 hours;
- fifteen-minute averages for the last day, kept 2 days.

One watcher at a time samples (a `Lease`), so buckets are never counted twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from deployments.cluster import labels as L
from deployments.models import CpuSample, Deployment, DeploymentStatus

Tier = CpuSample.Tier
WINDOWS = {
    "minute": (Tier.RAW, timedelta(minutes=1)),
    "hour": (Tier.MINUTE, timedelta(hours=1)),
    "day": (Tier.QUARTER, timedelta(days=1)),
}
BUCKETS = {Tier.MINUTE: timedelta(minutes=1), Tier.QUARTER: timedelta(minutes=15)}
RETENTION = {Tier.RAW: timedelta(minutes=10), Tier.MINUTE: timedelta(hours=2), Tier.QUARTER: timedelta(days=2)}


def parse_cpu(quantity: str) -> float:
    """A Kubernetes CPU quantity ("250m", "1200000n", "2", "1500u") in millicores."""
    quantity = str(quantity).strip()
    units = {"n": 1e-6, "u": 1e-3, "m": 1.0}
    if quantity and quantity[-1] in units:
        return float(quantity[:-1]) * units[quantity[-1]]
    return float(quantity) * 1000


_MEMORY_UNITS = {
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
}


def parse_memory(quantity: str) -> float:
    """A Kubernetes memory quantity ("123456Ki", "512Mi", "1G", "1048576") in bytes."""
    quantity = str(quantity).strip()
    for suffix in ("Ki", "Mi", "Gi", "Ti", "k", "M", "G", "T"):
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * _MEMORY_UNITS[suffix]
    return float(quantity or 0)


def _by_deployment(pod_metrics: Iterable[dict], resource: str, parse) -> dict[int, float]:
    totals: dict[int, float] = defaultdict(float)
    for item in pod_metrics:
        deployment = (item.get("metadata", {}).get("labels") or {}).get(L.DEPLOYMENT)
        if not deployment or not deployment.isdigit():
            continue
        for container in item.get("containers") or []:
            totals[int(deployment)] += parse((container.get("usage") or {}).get(resource, "0"))
    return dict(totals)


def usage_by_deployment(pod_metrics: Iterable[dict]) -> dict[int, float]:
    """Millicores per deployment id, summed over its pods' containers."""
    return _by_deployment(pod_metrics, "cpu", parse_cpu)


def memory_by_deployment(pod_metrics: Iterable[dict]) -> dict[int, float]:
    """Bytes of memory per deployment id, summed over its pods' containers."""
    return _by_deployment(pod_metrics, "memory", parse_memory)


def _bucket_start(moment: datetime, width: timedelta) -> datetime:
    seconds = int(width.total_seconds())
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=moment.tzinfo)


def cpu_record(usage: dict[int, float], *, memory: dict[int, float] | None = None, now: datetime | None = None) -> None:
    """Store one sample per live deployment (0 for a deployment with no running pods): CPU in
    millicores, ``memory`` in bytes."""
    now = now or timezone.now()
    memory = memory or {}
    live = set(Deployment.objects.live().values_list("pk", flat=True))
    values = {deployment_id: usage.get(deployment_id, 0.0) for deployment_id in live}
    used = {deployment_id: memory.get(deployment_id, 0.0) for deployment_id in live}
    with transaction.atomic():
        CpuSample.objects.bulk_create(
            [
                CpuSample(
                    deployment_id=d,
                    tier=Tier.RAW,
                    bucket_start=now,
                    total_millicores=v,
                    total_memory_bytes=used[d],
                    count=1,
                )
                for d, v in values.items()
            ],
            ignore_conflicts=True,
        )
        for tier, width in BUCKETS.items():
            start = _bucket_start(now, width)
            for deployment_id, value in values.items():
                updated = CpuSample.objects.filter(deployment_id=deployment_id, tier=tier, bucket_start=start).update(
                    total_millicores=F("total_millicores") + value,
                    total_memory_bytes=F("total_memory_bytes") + used[deployment_id],
                    count=F("count") + 1,
                )
                if not updated:
                    CpuSample.objects.create(
                        deployment_id=deployment_id,
                        tier=tier,
                        bucket_start=start,
                        total_millicores=value,
                        total_memory_bytes=used[deployment_id],
                        count=1,
                    )
        for tier, keep in RETENTION.items():
            CpuSample.objects.filter(tier=tier, bucket_start__lt=now - keep).delete()
    # Outside the transaction above: each status row is locked only for its own
    # statement. Held together until commit, they deadlocked with the watcher's
    # bulk refresh of `observed_at`, which locks rows in another order.
    for deployment_id in sorted(values):
        DeploymentStatus.objects.filter(deployment_id=deployment_id).update(
            cpu_millicores=values[deployment_id], memory_bytes=used[deployment_id], cpu_sampled_at=now
        )


@dataclass(frozen=True)
class CpuPoint:
    at: datetime
    millicores: float
    memory_bytes: float = 0.0


def cpu_series(deployment_id: int, *, now: datetime | None = None) -> dict[str, list[CpuPoint]]:
    """The points of each chart ("minute", "hour", "day"), oldest first. One query."""
    now = now or timezone.now()
    in_a_window = Q()
    for tier, span in WINDOWS.values():
        in_a_window |= Q(tier=tier, bucket_start__gte=now - span)
    rows = (
        CpuSample.objects.filter(in_a_window, deployment_id=deployment_id)
        .order_by("bucket_start")
        # A day is 96+ rows: no model instances.
        .values_list("tier", "bucket_start", "total_millicores", "total_memory_bytes", "count")
    )
    window_of = {tier: window for window, (tier, _) in WINDOWS.items()}
    series: dict[str, list[CpuPoint]] = {window: [] for window in WINDOWS}
    for tier, at, total, memory, count in rows:
        series[window_of[tier]].append(CpuPoint(at, total / count if count else 0.0, memory / count if count else 0.0))
    return series
