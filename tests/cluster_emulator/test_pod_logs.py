"""`pods/{name}/log` and simulated BuildKit builds, through the official client over HTTP."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import replace

import pytest
from kubernetes import client

from deployments.cluster import builds as build_manifests
from tests.deployments.cluster.test_build_manifests import SETTINGS, TARGET

from .conftest import APPLY, MANAGER, eventually, status_body


def build_job(namespace: str, build_id: int = 7) -> dict:
    """The Job Diploi's cluster runner applies for a build (in ``namespace``)."""
    target = replace(TARGET, build_id=build_id, repository="https://git.example.com/acme/shop.git", commit_sha="c" * 40)
    return build_manifests.job(target, replace(SETTINGS, namespace=namespace))


def run_job(batch, core, namespace, build_id=7):
    job = build_job(namespace, build_id)
    batch.patch_namespaced_job(
        job["metadata"]["name"], namespace, job, field_manager=MANAGER, force=True, _content_type=APPLY
    )
    selector = f"diploi.io/build={build_id}"
    return eventually(lambda: core.list_namespaced_pod(namespace, label_selector=selector).items[0].metadata.name)


def build_state(core, namespace, pod):
    statuses = core.read_namespaced_pod(pod, namespace).status.container_statuses or []
    return statuses[0].state if statuses else None


def test_a_build_job_prints_buildkit_progress_then_succeeds_with_the_digest_as_termination_message(
    batch, core, namespace
):
    pod = run_job(batch, core, namespace)
    response = eventually(
        lambda: core.read_namespaced_pod_log(
            pod, namespace, container="build", follow=True, timestamps=True, _preload_content=False
        )
    )
    lines = [line for line in response.data.decode().splitlines() if line]
    statuses = [json.loads(line.split(" ", 1)[1]) for line in lines if line.split(" ", 1)[1].startswith("{")]
    names = [v["name"] for s in statuses for v in s.get("vertexes", [])]
    assert "[1/5] FROM docker.io/library/python:3.12-slim" in names
    assert any(s.get("logs") and base64.b64decode(s["logs"][0]["data"]) for s in statuses)
    assert lines[0][:4].isdigit() and "T" in lines[0].split(" ", 1)[0]  # RFC 3339 timestamps
    terminated = eventually(lambda: build_state(core, namespace, pod).terminated)
    assert terminated.exit_code == 0
    metadata = json.loads(terminated.message)
    assert metadata["image.name"] == "registry.example.com/diploi/shop/app:" + "c" * 40
    assert metadata["containerimage.digest"].startswith("sha256:") and len(metadata["containerimage.digest"]) == 71
    eventually(lambda: batch.read_namespaced_job("build-7", namespace).status.succeeded == 1)


def test_a_build_fault_fails_the_build_at_the_chosen_step(own_emulator):
    from .conftest import api_for, make_namespace

    with api_for(own_emulator) as api:
        core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
        namespace = make_namespace(core)
        own_emulator.faults.fail_builds(namespace, step=4, message="pip install: exit code: 1")
        pod = run_job(batch, core, namespace)
        terminated = eventually(lambda: build_state(core, namespace, pod).terminated)
        assert terminated.exit_code == 1
        log = core.read_namespaced_pod_log(pod, namespace, container="build")
        assert "[4/5] RUN pip install" in log and '"error":"pip install: exit code: 1"' in log
        assert "[5/5]" not in log
        eventually(lambda: batch.read_namespaced_job("build-7", namespace).status.failed == 1)


def raw_log(emulator, namespace, pod, query: str) -> tuple[int, bytes]:
    """The official client has no sinceTime: ask over plain HTTP, as Diploi's own client does."""
    url = f"{emulator.url}/api/v1/namespaces/{namespace}/pods/{pod}/log?{query}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the test's own emulator
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_logs_take_tail_lines_since_time_and_the_container(emulator, batch, core, namespace):
    pod = run_job(batch, core, namespace)
    eventually(lambda: build_state(core, namespace, pod).terminated)
    full = core.read_namespaced_pod_log(pod, namespace, container="build", timestamps=True).splitlines()
    assert core.read_namespaced_pod_log(pod, namespace, container="build", tail_lines=2).splitlines() == [
        line.split(" ", 1)[1] for line in full[-2:]
    ]
    clone = core.read_namespaced_pod_log(pod, namespace, container="clone")
    assert "emulated container clone" in clone
    later = core.read_namespaced_pod_log(pod, namespace, container="build", since_seconds=3600)
    assert len(later.splitlines()) == len(full)
    assert raw_log(emulator, namespace, pod, "container=build&sinceTime=2999-01-01T00:00:00Z") == (200, b"")
    first_second = full[0].split(" ", 1)[0][:19] + "Z"
    code, body = raw_log(emulator, namespace, pod, f"container=build&timestamps=true&sinceTime={first_second}")
    assert code == 200 and body.decode().splitlines() == full
    code, body = raw_log(emulator, namespace, pod, "container=build&sinceTime=yesterday")
    assert code == 400 and b'parsing time \\"yesterday\\"' in body


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "a container name must be specified for pod"),
        ({"container": "nope"}, "container nope is not valid for pod"),
        ({"container": "build", "tail_lines": -1}, "tailLines: Invalid value: -1"),
        ({"container": "build", "previous": True}, 'previous terminated container "build"'),
    ],
)
def test_bad_log_requests_get_400_like_a_real_server(core, namespace, options, message):
    pod = {
        "metadata": {"name": "two"},
        "spec": {"containers": [{"name": "a", "image": "nginx:1.27"}, {"name": "build", "image": "nginx:1.27"}]},
    }
    core.create_namespaced_pod(namespace, pod)
    eventually(
        lambda: (core.read_namespaced_pod("two", namespace).status.container_statuses or [None])[0].state.running
    )
    with pytest.raises(client.ApiException) as error:
        core.read_namespaced_pod_log("two", namespace, **options)
    assert error.value.status == 400
    assert message in status_body(error.value)["message"]


def test_a_missing_pod_has_no_log(core, namespace):
    with pytest.raises(client.ApiException) as error:
        core.read_namespaced_pod_log("ghost", namespace)
    assert error.value.status == 404


@pytest.mark.parametrize("own_emulator", [{"build_step_delay": 0.5}], indirect=True)
def test_a_job_past_its_active_deadline_fails_and_loses_its_pods(own_emulator):
    from .conftest import api_for, make_namespace

    with api_for(own_emulator) as api:
        core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
        namespace = make_namespace(core)
        job = build_job(namespace)
        job["spec"]["activeDeadlineSeconds"] = 1
        batch.create_namespaced_job(namespace, job)
        failed = eventually(
            lambda: next(
                (
                    c
                    for c in batch.read_namespaced_job("build-7", namespace).status.conditions or []
                    if c.type == "Failed"
                ),
                None,
            ),
            timeout=10,
        )
        assert (failed.reason, failed.message) == ("DeadlineExceeded", "Job was active longer than specified deadline")
        eventually(lambda: not core.list_namespaced_pod(namespace, label_selector="diploi.io/build=7").items)


def run_pod(core, namespace: str, name: str, image: str, command: list[str], labels: dict | None = None) -> None:
    pod = {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "main", "image": image, "command": command}]},
    }
    core.create_namespaced_pod(namespace, pod)
    eventually(lambda: (core.read_namespaced_pod(name, namespace).status.container_statuses or [None])[0].state.running)


@pytest.mark.parametrize("own_emulator", [{"log_line_interval": 0.05}], indirect=True)
def test_a_dev_server_and_a_database_print_their_start_up_then_go_on_over_time(own_emulator):
    from .conftest import api_for, make_namespace

    with api_for(own_emulator) as api:
        core = client.CoreV1Api(api)
        namespace = make_namespace(core)
        run_pod(core, namespace, "web", "python:3.12-slim", ["python", "manage.py", "runserver", "0.0.0.0:8000"])
        run_pod(core, namespace, "db", "postgres:16.6", ["postgres"])
        web = core.read_namespaced_pod_log("web", namespace, container="main")
        assert "Starting development server at http://0.0.0.0:8000/" in web
        db = core.read_namespaced_pod_log("db", namespace, container="main")
        assert "database system is ready to accept connections" in db

        # A request now and then, each stamped with its own moment (later lines, later stamps).
        def web_requests():
            lines = core.read_namespaced_pod_log("web", namespace, container="main", timestamps=True).splitlines()
            found = [line for line in lines if '" 200 ' in line or '" 302 ' in line or '" 404 ' in line]
            return found[:5] if len(found) >= 5 else None

        requests = eventually(web_requests)
        assert all('HTTP/1.1"' in line for line in requests)
        stamps = [line.split(" ", 1)[0] for line in requests]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
        eventually(lambda: "checkpoint complete" in core.read_namespaced_pod_log("db", namespace, container="main"))
        # A follower sees new lines arrive without anyone writing them.
        response = core.read_namespaced_pod_log(
            "web", namespace, container="main", follow=True, tail_lines=0, _preload_content=False
        )
        try:
            assert 'HTTP/1.1"' in next(response.stream(1024)).decode()
        finally:
            response.release_conn()


def test_a_crashed_containers_last_words_are_its_previous_log(own_emulator):
    from .conftest import api_for, make_namespace

    with api_for(own_emulator) as api:
        core = client.CoreV1Api(api)
        namespace = make_namespace(core)
        run_pod(core, namespace, "api", "python:3.12-slim", ["uvicorn", "main:app"], labels={"app": "api"})
        own_emulator.faults.crash(namespace, {"app": "api"}, exit_code=3)
        eventually(lambda: core.read_namespaced_pod("api", namespace).status.container_statuses[0].restart_count >= 1)
        previous = core.read_namespaced_pod_log("api", namespace, container="main", previous=True).splitlines()
        assert "INFO:     Application startup complete." in previous
        assert previous[0].startswith("emulated container main")
        assert previous[-4] == "Traceback (most recent call last):"
        assert previous[-1] == "RuntimeError: simulated crash (an injected fault): exiting with status 3"
        own_emulator.faults.heal(namespace, {"app": "api"})
        current = eventually(lambda: core.read_namespaced_pod_log("api", namespace, container="main"))
        assert "Traceback (most recent call last):" not in current  # a new run, a new log
