"""Kubernetes objects shaped as the API server returns them, for status tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from deployments.cluster import labels as L

NOW = datetime(2026, 11, 26, 12, 0, 0).astimezone()
OLD = (NOW - timedelta(hours=1)).isoformat()
FRESH = (NOW - timedelta(seconds=5)).isoformat()


def _labels(service: str, kind: str = "component") -> dict:
    return {
        **L.ownership(project="shop", deployment_id=7, stage="development"),
        L.SERVICE: service,
        L.SERVICE_KIND: kind,
    }


def namespace(phase: str = "Active") -> dict:
    return {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {
            "name": "shop-dev-abc123",
            "labels": L.ownership(project="shop", deployment_id=7, stage="development"),
            "creationTimestamp": OLD,
        },
        "status": {"phase": phase},
    }


def running(started: str = OLD) -> dict:
    return {"running": {"startedAt": started}}


def waiting(reason: str, message: str = "") -> dict:
    return {"waiting": {"reason": reason, "message": message}}


def container(
    name: str, *, state: dict, ready: bool, restarts: int = 0, last_exit: int | None = None, last_reason: str = "Error"
) -> dict:
    status = {
        "name": name,
        "state": state,
        "ready": ready,
        "restartCount": restarts,
        "image": f"{name}:latest",
        "started": "running" in state,
    }
    if last_exit is not None:
        status["lastState"] = {"terminated": {"exitCode": last_exit, "reason": last_reason, "finishedAt": FRESH}}
    return status


def pod(
    name: str,
    service: str,
    *,
    ready: bool = True,
    phase: str = "Running",
    containers: list[dict] | None = None,
    created: str = OLD,
    kind: str = "component",
    init: list[dict] | None = None,
    deleting: bool = False,
    conditions: list[dict] | None = None,
    revision: str | None = None,
) -> dict:
    containers = containers if containers is not None else [container(service, state=running(), ready=ready)]
    meta = {
        "name": name,
        "namespace": "shop-dev-abc123",
        "labels": _labels(service, kind),
        "creationTimestamp": created,
    }
    if deleting:
        meta["deletionTimestamp"] = FRESH
    if revision:
        meta["labels"] = {**meta["labels"], "controller-revision-hash": revision}
    status = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}, *(conditions or [])],
        "containerStatuses": containers,
    }
    if init is not None:
        status["initContainerStatuses"] = init
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": {}, "status": status}


def claim(
    name: str,
    service: str,
    *,
    phase: str = "Bound",
    size: str = "5Gi",
    created: str = OLD,
    kind: str = "addon",
    deleting: bool = False,
) -> dict:
    status = {"phase": phase}
    if phase == "Bound":
        status["capacity"] = {"storage": size}
    meta = {"name": name, "namespace": "shop-dev-abc123", "labels": _labels(service, kind)}
    meta["creationTimestamp"] = created
    if deleting:
        meta["deletionTimestamp"] = FRESH
    return {
        "kind": "PersistentVolumeClaim",
        "apiVersion": "v1",
        "metadata": meta,
        "spec": {"resources": {"requests": {"storage": size}}},
        "status": status,
    }


def statefulset(
    service: str,
    *,
    replicas: int = 1,
    ready: int = 1,
    created: str = OLD,
    rolling: bool = False,
    kind: str = "component",
    generation: int = 2,
    ours: int | None = None,
    image: str | None = None,
) -> dict:
    """``ours``: the Diploi generation it was rendered from (its annotation)."""
    return {
        "kind": "StatefulSet",
        "apiVersion": "apps/v1",
        "metadata": _workload_meta(service, kind, created, generation, ours),
        "spec": {"replicas": replicas, "serviceName": f"{service}-headless", **_template(service, image)},
        "status": {
            "observedGeneration": generation,
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": replicas if not rolling else 0,
            "currentRevision": f"{service}-1",
            "updateRevision": f"{service}-2" if rolling else f"{service}-1",
        },
    }


def _workload_meta(service: str, kind: str, created: str, generation: int, ours: int | None) -> dict:
    meta = {
        "name": service,
        "namespace": "shop-dev-abc123",
        "labels": _labels(service, kind),
        "creationTimestamp": created,
        "generation": generation,
    }
    if ours is not None:
        meta["annotations"] = {L.GENERATION_ANNOTATION: str(ours)}
    return meta


def _template(service: str, image: str | None) -> dict:
    if image is None:
        return {}
    return {"template": {"spec": {"containers": [{"name": service, "image": image}]}}}


def deployment(
    service: str,
    *,
    replicas: int = 1,
    ready: int = 1,
    updated: int | None = None,
    created: str = OLD,
    generation: int = 1,
    total: int | None = None,
    observed_generation: int | None = None,
    ours: int | None = None,
    image: str | None = None,
) -> dict:
    """``total``: pods of every ReplicaSet (old ones included); ``ours``: as for `statefulset`."""
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": _workload_meta(service, "component", created, generation, ours),
        "spec": {"replicas": replicas, **_template(service, image)},
        "status": {
            "observedGeneration": generation if observed_generation is None else observed_generation,
            "replicas": replicas if total is None else total,
            "readyReplicas": ready,
            "updatedReplicas": replicas if updated is None else updated,
            "availableReplicas": ready,
        },
    }


def certificate(host: str, *, ready: str = "True", reason: str = "Ready", message: str = "") -> dict:
    return {
        "kind": "Certificate",
        "apiVersion": "cert-manager.io/v1",
        "metadata": {"name": "public-tls", "namespace": "shop-dev-abc123", "creationTimestamp": OLD},
        "spec": {"dnsNames": [host], "secretName": "public-tls"},
        "status": {"conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": message}]},
    }
