"""Liveness and readiness: what probes and load balancers see, on the web's port and on HEALTH_PORT."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from deployments.cluster.connection import reset_cluster
from diploi_site.health_server import HealthServer
from diploi_site.process import process_name, set_process_name
from tests.support import free_port


@pytest.fixture
def as_process():
    before = process_name()
    yield set_process_name
    set_process_name(before)
    reset_cluster()


def test_it_answers_probes_whatever_host_they_name_and_over_plain_http(client, db, settings):
    # Kubelets probe the pod's IP; production redirects plain HTTP to HTTPS.
    settings.ALLOWED_HOSTS = ["diploi.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    for path in ("/healthz", "/readyz"):
        response = client.get(path, HTTP_HOST="10.244.0.17:8000")
        assert (response.status_code, response.content) == (200, b"ok"), path
    assert client.get("/projects/", HTTP_HOST="10.244.0.17:8000").status_code == 400


def test_it_is_not_ready_when_redis_does_not_answer_and_says_so(client, db, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.content.decode().startswith("not ready\nredis: ")
    # Alive all the same: a broker outage must not get the process restarted.
    assert client.get("/healthz").status_code == 200


def test_a_worker_is_not_ready_without_the_cluster_but_the_web_is(client, db, settings, as_process):
    settings.KUBE_API_URL = f"http://127.0.0.1:{free_port()}"
    reset_cluster()
    assert client.get("/readyz").status_code == 200
    as_process("worker")
    response = client.get("/readyz?verbose")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False and body["process"] == "worker"
    failed = {check["name"]: check["detail"] for check in body["checks"] if not check["ok"]}
    assert list(failed) == ["cluster"]
    assert "cannot be reached" in failed["cluster"]


def test_a_worker_with_its_cluster_is_ready(client, db, emulator, as_process):
    as_process("watcher")
    response = client.get("/readyz?verbose")
    assert response.status_code == 200
    assert [check["name"] for check in response.json()["checks"] if check["ok"]][-1] == "cluster"


@pytest.fixture
def health_server(transactional_db):
    server = HealthServer("127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_health_server_answers_probes_and_scrapes(health_server, settings, client):
    assert _get(f"{health_server}/healthz") == (200, "ok\n")
    assert _get(f"{health_server}/readyz") == (200, "ok\n")
    assert _get(f"{health_server}/nothing")[0] == 404
    client.get("/accounts/login/")
    status, metrics = _get(f"{health_server}/metrics")
    assert status == 200
    assert 'diploi_deployments{health="green"} 0.0' in metrics
    assert 'diploi_http_request_duration_seconds_count{method="GET",route="login",status="200"}' in metrics


def test_the_health_server_says_why_it_is_not_ready(health_server, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    status, body = _get(f"{health_server}/readyz")
    assert status == 503 and body.startswith("not ready\nredis: ")
    status, body = _get(f"{health_server}/readyz?verbose")
    assert status == 503 and json.loads(body)["checks"][1]["name"] == "redis"
