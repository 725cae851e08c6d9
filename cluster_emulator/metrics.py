"""The metrics API (`metrics.k8s.io/v1beta1`), as metrics-server serves it: PodMetrics
for running pods and NodeMetrics for the node. Usage is plausible and stable: derived
from each container's requests (or a small default), with a gentle wobble over time."""

from __future__ import annotations

import math
import time
import zlib
from datetime import UTC, datetime

from . import quantity
from .resources import NODES, PODS
from .selectors import LabelSelector
from .store import Store

WINDOW = "15.011s"


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _wobble(seed: str, now: float) -> float:
    """Between 0.8 and 1.2, slowly changing with time, different per container."""
    phase = (zlib.crc32(seed.encode()) % 1000) / 1000 * 2 * math.pi
    return 1.0 + 0.2 * math.sin(now / 30.0 + phase)


def container_usage(pod: dict, container: dict, now: float) -> dict:
    seed = f"{pod['metadata']['uid']}/{container.get('name')}"
    base = zlib.crc32(seed.encode()) % 1000 / 1000  # 0..1, fixed per container
    requests = (container.get("resources") or {}).get("requests") or {}
    try:
        cpu_cores = (
            quantity.to_float(requests["cpu"]) * (0.1 + 0.4 * base) if "cpu" in requests else 0.002 + 0.02 * base
        )
        memory = (
            quantity.to_float(requests["memory"]) * (0.3 + 0.4 * base)
            if "memory" in requests
            else (12 + 100 * base) * 1024 * 1024
        )
    except quantity.QuantityError:
        cpu_cores, memory = 0.01, 32 * 1024 * 1024
    wobble = _wobble(seed, now)
    nanocores = max(int(cpu_cores * wobble * 1e9), 1000)
    kib = max(int(memory * wobble / 1024), 1024)
    return {"cpu": f"{nanocores}n", "memory": f"{kib}Ki"}


def pod_metrics(pod: dict, now: float | None = None) -> dict | None:
    """The PodMetrics of a pod, None when it has no running container (metrics-server has none either)."""
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return None
    running = {c["name"] for c in status.get("containerStatuses") or () if "running" in (c.get("state") or {})}
    if not running:
        return None
    now = time.time() if now is None else now
    meta = pod["metadata"]
    containers = [
        {"name": c["name"], "usage": container_usage(pod, c, now)}
        for c in (pod.get("spec") or {}).get("containers") or ()
        if c.get("name") in running
    ]
    out_meta = {"name": meta["name"], "namespace": meta["namespace"], "creationTimestamp": _stamp()}
    if meta.get("labels"):
        out_meta["labels"] = meta["labels"]
    return {
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": out_meta,
        "timestamp": _stamp(),
        "window": WINDOW,
        "containers": containers,
    }


def list_pod_metrics(store: Store, namespace: str | None, labels: LabelSelector) -> list[dict]:
    pods, _ = store.list(PODS, namespace, lambda p: labels.matches((p.get("metadata") or {}).get("labels")))
    now = time.time()
    items = [m for m in (pod_metrics(p, now) for p in pods) if m is not None]
    items.sort(key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"]))
    return items


def node_metrics(store: Store, name: str) -> dict | None:
    node = store.get(NODES, "", name)
    if node is None:
        return None
    now = time.time()
    cpu, memory = 0.25, 900 * 1024 * 1024  # the system's own share
    for m in list_pod_metrics(store, None, LabelSelector()):
        for c in m["containers"]:
            cpu += quantity.to_float(c["usage"]["cpu"])
            memory += quantity.to_float(c["usage"]["memory"])
    return {
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": name, "creationTimestamp": _stamp(), "labels": node["metadata"].get("labels", {})},
        "timestamp": _stamp(),
        "window": "20.05s",
        "usage": {"cpu": f"{int(cpu * 1e9 * _wobble(name, now))}n", "memory": f"{int(memory / 1024)}Ki"},
    }
