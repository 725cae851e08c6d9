"""Fixtures for the emulator tests: an emulator over real HTTP, the official client
pointed at it, a fresh namespace per test and a polling helper."""

from __future__ import annotations

import itertools
import json
import time

import pytest
from kubernetes import client

from cluster_emulator import ClusterEmulator

MANAGER = "diploi-tests"
APPLY = "application/apply-patch+yaml"
_names = itertools.count(1)


def eventually(check, timeout: float = 5.0, interval: float = 0.02, message: str = ""):
    """Poll `check()` until it returns something truthy (returned) or `timeout` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    last = error = None
    while True:
        try:
            last = check()
            error = None
        except (AssertionError, client.ApiException, AttributeError, IndexError, KeyError, TypeError) as exc:
            error = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {message or check} (last: {error or last!r})")
        time.sleep(interval)


def status_body(exc: client.ApiException) -> dict:
    """The Status object of an error answer."""
    return json.loads(exc.body)


@pytest.fixture(scope="session")
def emulator():
    emu = ClusterEmulator(speed="fast", validate_internal=True)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def own_emulator(request):
    """A private emulator, for tests that break the API (faults) or need other delays:
    `@pytest.mark.parametrize("own_emulator", [{"service_account_delay": 30}], indirect=True)`."""
    options = getattr(request, "param", {}) or {}
    emu = ClusterEmulator(speed="fast", validate_internal=True, **options)
    emu.start()
    yield emu
    emu.stop()


def api_for(emu: ClusterEmulator, **config) -> client.ApiClient:
    configuration = emu.configuration()
    for key, value in config.items():
        setattr(configuration, key, value)
    return client.ApiClient(configuration)


@pytest.fixture
def api_client(emulator):
    with api_for(emulator) as api:
        yield api


@pytest.fixture
def core(api_client):
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client):
    return client.AppsV1Api(api_client)


@pytest.fixture
def batch(api_client):
    return client.BatchV1Api(api_client)


@pytest.fixture
def networking(api_client):
    return client.NetworkingV1Api(api_client)


@pytest.fixture
def custom(api_client):
    return client.CustomObjectsApi(api_client)


def make_namespace(core: client.CoreV1Api, prefix: str = "t") -> str:
    name = f"{prefix}-{next(_names)}-{int(time.time() * 1000) % 100000}"
    core.create_namespace({"metadata": {"name": name}})
    eventually(lambda: core.list_namespaced_service_account(name).items, message="default ServiceAccount")
    return name


@pytest.fixture
def namespace(core):
    return make_namespace(core)


# -- manifests --------------------------------------------------------------------------------------------


def deployment(
    name: str,
    namespace: str,
    replicas: int = 1,
    *,
    component: str = "web",
    image: str = "nginx:1.27",
    annotations: dict | None = None,
    containers: list | None = None,
) -> dict:
    labels = {"app.kubernetes.io/name": name, "diploi.io/component": component}
    template_meta = {"labels": labels}
    if annotations:
        template_meta["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": template_meta,
                "spec": {
                    "containers": containers
                    or [
                        {
                            "name": "web",
                            "image": image,
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                        }
                    ]
                },
            },
        },
    }


def statefulset(
    name: str, namespace: str, replicas: int = 1, *, annotations: dict | None = None, size: str = "1Gi"
) -> dict:
    labels = {"app.kubernetes.io/name": name, "diploi.io/component": "db"}
    template_meta = {"labels": labels}
    if annotations:
        template_meta["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": template_meta,
                "spec": {
                    "containers": [
                        {"name": "db", "image": "postgres:17", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
                    ]
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data", "labels": {"diploi.io/volume": "data"}},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
                }
            ],
        },
    }


def apply(method, *args, body: dict, force: bool = True, **kwargs):
    """Server-side apply through a typed client method (e.g. `apps.patch_namespaced_deployment`)."""
    return method(*args, body=body, field_manager=MANAGER, force=force, _content_type=APPLY, **kwargs)


def pods_of(core: client.CoreV1Api, namespace: str, selector: str | None = None) -> list:
    return core.list_namespaced_pod(namespace, label_selector=selector).items


def ready(pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or ())
