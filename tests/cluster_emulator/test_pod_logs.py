"""`pods/{name}/log` and simulated BuildKit builds, through the official client over HTTP."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
from kubernetes import client

from deployments.cluster import builds as build_manifests

from .conftest import APPLY, MANAGER, eventually, status_body

SETTINGS = build_manifests.BuildSettings(
    namespace="unused",
    buildkit_image="moby/buildkit:v0.29.0-rootless",
    git_image="alpine/git:2.47.2",
    registry_secret="registry-push",
    cpu_request="500m",
    cpu_limit="2",
    memory_request="1Gi",
    memory_limit="4Gi",
    deadline_seconds=600,
    retention_seconds=60,
)


def build_job(namespace: str, build_id: int = 7) -> dict:
    target = build_manifests.BuildTarget(
        build_id=build_id,
        deployment_id=3,
        project="shop",
        stage="staging",
        component="app",
        repository="https://git.example.com/acme/shop.git",
        branch="main",
        commit_sha="c" * 40,
        dockerfile="docker/Dockerfile",
        context=".",
        image="registry.example.com/diploi/shop/app",
    )
    job = build_manifests.job(target, SETTINGS)
    job["metadata"]["namespace"] = namespace
    return job


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
