"""The service proxy (`services/{name}:{port}/proxy/{path}`), through the official client: refusals as a
real API server words them, and the stand-in app's answers in Diploi's status format."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from kubernetes import client

from cluster_emulator import ClusterEmulator

from .conftest import api_for, deployment, eventually, make_namespace, status_body


def service(name: str, component: str, port: int = 8000) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "selector": {"app.kubernetes.io/name": component, "diploi.io/component": component},
            "ports": [{"name": "main", "port": port, "targetPort": port}],
        },
    }


def proxied(core: client.CoreV1Api, namespace: str, reference: str, path: str) -> tuple[int, dict | str]:
    try:
        response = core.connect_get_namespaced_service_proxy_with_path(
            reference, namespace, path, _preload_content=False
        )
    except client.ApiException as error:
        return error.status, status_body(error)
    code, body = response.status, response.read().decode()
    try:
        return code, json.loads(body)
    except ValueError:
        return code, body


def ready(core, namespace, component):
    def check():
        pods = core.list_namespaced_pod(namespace, label_selector=f"diploi.io/component={component}").items
        return pods and all(
            any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []) for p in pods
        )

    eventually(check, timeout=10, message=f"{component} ready")


def test_it_refuses_a_missing_service_with_a_404_status(core, namespace):
    code, body = proxied(core, namespace, "app:8000", "status")
    assert code == 404
    assert body["kind"] == "Status" and body["reason"] == "NotFound"
    assert body["message"] == 'services "app" not found'


def test_it_answers_503_while_no_pod_is_ready_behind_the_service(core, namespace):
    core.create_namespaced_service(namespace, service("app", "app"))
    code, body = proxied(core, namespace, "app:8000", "status")
    assert code == 503
    assert body["reason"] == "ServiceUnavailable"
    assert body["message"] == 'no endpoints available for service "app"'
    code, body = proxied(core, namespace, "app:9999", "status")
    assert code == 503 and body["message"] == 'no service port "9999" found for service "app"'


def test_it_answers_for_the_app_in_diploi_status_format(apps, core, namespace):
    core.create_namespaced_service(namespace, service("app", "app"))
    core.create_namespaced_service(namespace, service("postgres", "postgres", 5432))
    apps.create_namespaced_deployment(namespace, deployment("app", namespace, component="app"))
    ready(core, namespace, "app")
    for reference in ("app:8000", "app:main", "app"):
        code, body = proxied(core, namespace, reference, "status/")
        assert code == 200, body
        assert body["diploiStatusVersion"] == 1
    items = {item["identifier"]: item for item in body["items"]}
    assert items["app"]["status"] == "green"
    # The database has no ready pod yet: the app waits for it.
    assert items["postgres-connection"]["status"] == "yellow"
    assert items["postgres-connection"]["message"] == "Waiting for postgres"
    apps.create_namespaced_deployment(namespace, deployment("postgres", namespace, component="postgres"))
    ready(core, namespace, "postgres")
    eventually(
        lambda: proxied(core, namespace, "app:8000", "status")[1]["items"][1]["status"] == "green",
        message="connected",
    )
    code, body = proxied(core, namespace, "app:8000", "index.html")
    assert code == 200 and "stands in for port 8000" in body


@contextmanager
def serving_app(emu: ClusterEmulator):
    """(the core API, a namespace) where the Service "app" has a ready pod behind it."""
    with api_for(emu) as api:
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        namespace = make_namespace(core)
        core.create_namespaced_service(namespace, service("app", "app"))
        apps.create_namespaced_deployment(namespace, deployment("app", namespace, component="app"))
        ready(core, namespace, "app")
        yield core, namespace


@pytest.mark.parametrize("own_emulator", [{"app_status_warmup": 30}], indirect=True)
def test_it_reports_yellow_while_the_app_starts(own_emulator: ClusterEmulator):
    with serving_app(own_emulator) as (core, namespace):
        code, body = proxied(core, namespace, "app:8000", "status")
        assert code == 200
        assert body["items"][0]["status"] == "yellow" and body["items"][0]["isPending"] is True


def test_it_injects_a_red_app_an_unreachable_one_and_garbage(own_emulator: ClusterEmulator):
    with serving_app(own_emulator) as (core, namespace):
        own_emulator.faults.app_status(namespace, "app", status="red", message="Database migrations failed")
        code, body = proxied(core, namespace, "app:8000", "status")
        assert body["items"][0]["status"] == "red"
        assert body["items"][0]["message"] == "Database migrations failed"

        own_emulator.faults.app_unreachable(namespace, "app")
        code, body = proxied(core, namespace, "app:8000", "status")
        assert code == 503 and "connect: connection refused" in body["message"]

        own_emulator.faults.app_garbage(namespace)
        code, body = proxied(core, namespace, "app:8000", "status")
        assert code == 200 and body == "<html>Welcome to nginx!</html>"

        own_emulator.faults.heal_app_status(namespace)
        code, body = proxied(core, namespace, "app:8000", "status")
        assert body["items"][0]["status"] == "green"
