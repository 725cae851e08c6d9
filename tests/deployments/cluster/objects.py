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
    status = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": containers,
    }
    if init is not None:
        status["initContainerStatuses"] = init
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": {}, "status": status}


def claim(
    name: str, service: str, *, phase: str = "Bound", size: str = "5Gi", created: str = OLD, kind: str = "addon"
) -> dict:
    status = {"phase": phase}
    if phase == "Bound":
        status["capacity"] = {"storage": size}
    return {
        "kind": "PersistentVolumeClaim",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": "shop-dev-abc123",
            "labels": _labels(service, kind),
            "creationTimestamp": created,
        },
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
) -> dict:
    return {
        "kind": "StatefulSet",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": service,
            "namespace": "shop-dev-abc123",
            "labels": _labels(service, kind),
            "creationTimestamp": created,
            "generation": generation,
        },
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": generation,
            "replicas": replicas,
            "readyReplicas": ready,
            "currentRevision": f"{service}-1",
            "updateRevision": f"{service}-2" if rolling else f"{service}-1",
        },
    }


def deployment(
    service: str,
    *,
    replicas: int = 1,
    ready: int = 1,
    updated: int | None = None,
    created: str = OLD,
    generation: int = 1,
) -> dict:
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": service,
            "namespace": "shop-dev-abc123",
            "labels": _labels(service),
            "creationTimestamp": created,
            "generation": generation,
        },
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": generation,
            "replicas": replicas,
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
