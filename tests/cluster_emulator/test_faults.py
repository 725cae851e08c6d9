"""Fault injection, observed through the client: crash loops, failing and hanging
requests, an API server that goes away and comes back."""

from __future__ import annotations

import time

import pytest
import urllib3
from kubernetes import client

from .conftest import api_for, apply, deployment, eventually, pods_of, ready, status_body

WEB = "diploi.io/component=web"


def test_it_crash_loops_matching_pods_until_healed(emulator, apps, core, namespace):
    apply(apps.patch_namespaced_deployment, "web", namespace, body=deployment("web", namespace))
    apply(
        apps.patch_namespaced_deployment, "worker", namespace, body=deployment("worker", namespace, component="worker")
    )
    eventually(lambda: len([p for p in pods_of(core, namespace) if ready(p)]) == 2)
    emulator.faults.crash(namespace, selector={"diploi.io/component": "web"}, exit_code=3)

    def crash_looping():
        pod = pods_of(core, namespace, WEB)[0]
        status = pod.status.container_statuses[0]
        waiting = status.state.waiting
        return (
            waiting is not None
            and waiting.reason == "CrashLoopBackOff"
            and status.restart_count >= 2
            and not ready(pod)
            and pod
        )

    pod = eventually(crash_looping, message="CrashLoopBackOff with restarts")
    status = pod.status.container_statuses[0]
    assert status.last_state.terminated.exit_code == 3 and status.last_state.terminated.reason == "Error"
    assert not status.ready and pod.status.phase == "Running"
    assert "back-off" in status.state.waiting.message
    assert all(ready(p) for p in pods_of(core, namespace, "diploi.io/component=worker"))
    backoffs = [e for e in core.list_namespaced_event(namespace).items if e.reason == "BackOff"]
    assert backoffs and backoffs[0].type == "Warning"
    eventually(
        lambda: any(e.count >= 2 for e in core.list_namespaced_event(namespace).items if e.reason == "BackOff"),
        message="BackOff events aggregated",
    )
    d = apps.read_namespaced_deployment("web", namespace)
    assert not d.status.ready_replicas
    emulator.faults.heal(namespace, selector={"diploi.io/component": "web"})
    healed = eventually(lambda: (p := pods_of(core, namespace, WEB)[0]) and ready(p) and p, message="healed")
    assert healed.status.container_statuses[0].restart_count >= 2
    assert healed.status.container_statuses[0].state.running


def test_it_crashes_new_pods_too(emulator, core, namespace):
    emulator.faults.crash(namespace)
    core.create_namespaced_pod(
        namespace, {"metadata": {"name": "doomed"}, "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]}}
    )
    eventually(lambda: core.read_namespaced_pod("doomed", namespace).status.container_statuses[0].restart_count >= 1)
    emulator.faults.heal(namespace)
    eventually(lambda: ready(core.read_namespaced_pod("doomed", namespace)))


def test_it_fails_requests_with_the_status_asked_for(own_emulator):
    # retries=False: by default urllib3 itself retries a 429/503 that carries Retry-After.
    with api_for(own_emulator, retries=False) as api:
        core = client.CoreV1Api(api)
        own_emulator.faults.fail_requests(status=500, count=1)
        with pytest.raises(client.ApiException) as caught:
            core.list_namespace()
        assert caught.value.status == 500
        status = status_body(caught.value)
        assert status["kind"] == "Status" and status["reason"] == "InternalError" and status["code"] == 500
        assert core.list_namespace().items  # only one request failed

        own_emulator.faults.fail_requests(status=429, count=1, retry_after=2)
        with pytest.raises(client.ApiException) as caught:
            core.list_namespace()
        assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "2"
        assert status_body(caught.value)["details"]["retryAfterSeconds"] == 2

        own_emulator.faults.fail_requests(status=503, methods=["POST"], path_contains="/configmaps")
        with pytest.raises(client.ApiException) as caught:
            core.create_namespaced_config_map("default", {"metadata": {"name": "x"}})
        assert caught.value.status == 503
        assert core.list_namespaced_config_map("default").items  # GETs still answered
        own_emulator.faults.clear()
        core.create_namespaced_config_map("default", {"metadata": {"name": "x"}})

        own_emulator.faults.fail_requests(status=429, count=1, retry_after=1)
        with api_for(own_emulator) as retrying:  # the client's default: wait Retry-After, then retry
            started = time.monotonic()
            assert client.CoreV1Api(retrying).list_namespace().items
            assert time.monotonic() - started >= 1

        own_emulator.faults.fail_requests(status=500, seconds=0.2)
        with pytest.raises(client.ApiException):
            core.list_namespace()
        eventually(lambda: core.list_namespace().items, timeout=10)  # the 0.2 s of failures pass


def test_it_hangs_requests(own_emulator):
    with api_for(own_emulator, retries=False) as api:
        core = client.CoreV1Api(api)
        own_emulator.faults.hang(0.3, path_contains="/namespaces", count=1)
        started = time.monotonic()
        core.list_namespace()
        assert time.monotonic() - started >= 0.3
        own_emulator.faults.hang(5, count=1)
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            core.list_namespace(_request_timeout=(1, 0.2))
        own_emulator.faults.clear()


def test_it_refuses_connections_while_down_and_keeps_its_state(own_emulator):
    with api_for(own_emulator, retries=0) as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_config_map("default", {"metadata": {"name": "kept"}})
        own_emulator.take_down()
        assert not own_emulator.is_up
        with pytest.raises(urllib3.exceptions.HTTPError) as caught:
            core.read_namespaced_config_map("kept", "default")
        assert isinstance(caught.value, (urllib3.exceptions.MaxRetryError, urllib3.exceptions.ProtocolError))
        with pytest.raises(urllib3.exceptions.MaxRetryError) as caught:
            core.read_namespaced_config_map("kept", "default")
        assert isinstance(caught.value.reason, urllib3.exceptions.NewConnectionError)
        assert "refused" in str(caught.value.reason).lower()
        own_emulator.bring_up()
        assert core.read_namespaced_config_map("kept", "default").metadata.name == "kept"


def test_it_keeps_running_the_cluster_while_the_api_is_down(own_emulator):
    with api_for(own_emulator) as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        apply(apps.patch_namespaced_deployment, "web", "default", body=deployment("web", "default"))
        own_emulator.take_down()
        # The controllers keep going meanwhile: the pod becomes ready while nobody can ask.
        eventually(lambda: _ready_web_pods(own_emulator), timeout=30, message="a ready pod while the API is down")
        assert not own_emulator.is_up
        own_emulator.bring_up()
        pod = pods_of(core, "default", WEB)[0]
        assert ready(pod)


def _ready_web_pods(emu) -> list[dict]:
    return [
        pod
        for pod in emu.snapshot().get("pods", [])
        if pod["metadata"].get("labels", {}).get("diploi.io/component") == "web"
        and any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))
    ]


def test_it_reports_a_stuck_rollout_past_its_progress_deadline(emulator, apps, namespace):
    emulator.faults.crash(namespace, selector={"diploi.io/component": "web"})
    manifest = deployment("web", namespace)
    manifest["spec"]["progressDeadlineSeconds"] = 1
    apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)

    def stuck():
        conditions = apps.read_namespaced_deployment("web", namespace).status.conditions or ()
        return any(
            c.type == "Progressing" and c.status == "False" and c.reason == "ProgressDeadlineExceeded"
            for c in conditions
        )

    eventually(stuck, timeout=20)
    emulator.faults.heal(namespace)


def test_it_fails_a_job_whose_pods_keep_crashing(emulator, batch, core, namespace):
    emulator.faults.crash(namespace, selector={"job-name": "migrate"}, exit_code=2)
    batch.create_namespaced_job(
        namespace,
        {
            "metadata": {"name": "migrate"},
            "spec": {
                "backoffLimit": 1,
                "template": {
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "migrate", "image": "busybox:1.36"}]}
                },
            },
        },
    )

    def failed():
        job = batch.read_namespaced_job("migrate", namespace)
        return any(c.type == "Failed" and c.status == "True" for c in job.status.conditions or ()) and job

    job = eventually(failed)
    assert job.status.failed == 2
    pod = core.list_namespaced_pod(namespace, label_selector="job-name=migrate").items[0]
    assert pod.status.phase == "Failed"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 2
    emulator.faults.heal(namespace)


def first_kill(apps, core, namespace: str, inject, what: str):
    """The web Deployment under the fault ``inject`` applies: its container's status once killed once."""
    apply(apps.patch_namespaced_deployment, "web", namespace, body=deployment("web", namespace))
    inject(namespace, selector={"diploi.io/component": "web"})

    def killed():
        status = pods_of(core, namespace, WEB)[0].status.container_statuses[0]
        return status.restart_count >= 1 and status.last_state.terminated and status

    return eventually(killed, message=what)


def test_it_kills_containers_for_their_memory_as_the_oom_killer_does(emulator, apps, core, namespace):
    status = first_kill(apps, core, namespace, emulator.faults.oom, "an OOM kill")
    assert (status.last_state.terminated.reason, status.last_state.terminated.exit_code) == ("OOMKilled", 137)
    emulator.faults.heal(namespace, selector={"diploi.io/component": "web"})
    eventually(lambda: ready(pods_of(core, namespace, WEB)[0]), message="healed")


def test_it_kills_containers_whose_liveness_probe_fails_as_a_kubelet_does(emulator, apps, core, namespace):
    status = first_kill(apps, core, namespace, emulator.faults.liveness_failure, "a kill for the failed probe")
    assert status.last_state.terminated.exit_code == 137 and not status.ready
    pod = pods_of(core, namespace, WEB)[0]
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={pod.metadata.name}").items
    unhealthy = next(e for e in events if e.reason == "Unhealthy")
    assert (unhealthy.type, unhealthy.message) == (
        "Warning",
        "Liveness probe failed: HTTP probe failed with statuscode: 500",
    )
    assert unhealthy.count == 3 and unhealthy.involved_object.field_path == "spec.containers{web}"
    assert any(e.reason == "Killing" and "failed liveness probe, will be restarted" in e.message for e in events)
    emulator.faults.heal(namespace, selector={"diploi.io/component": "web"})
    eventually(lambda: ready(pods_of(core, namespace, WEB)[0]), message="healed")


def test_it_refuses_image_pulls_as_a_kubelet_reports_them(emulator, apps, core, namespace):
    emulator.faults.image_pull_error(namespace, selector={"diploi.io/component": "web"})
    apply(apps.patch_namespaced_deployment, "web", namespace, body=deployment("web", namespace))

    def waiting(reason):
        def check():
            pods = pods_of(core, namespace, WEB)
            state = pods and pods[0].status.container_statuses and pods[0].status.container_statuses[0].state
            return state and state.waiting and state.waiting.reason == reason and state.waiting

        return check

    pulling = eventually(waiting("ErrImagePull"), message="ErrImagePull")
    assert "pull access denied" in pulling.message
    backoff = eventually(waiting("ImagePullBackOff"), message="ImagePullBackOff")
    assert backoff.message.startswith('Back-off pulling image "')
    pod = pods_of(core, namespace, WEB)[0]
    assert pod.status.phase == "Pending" and not ready(pod)
    events = core.list_namespaced_event(namespace).items
    assert any(e.reason == "Failed" and e.type == "Warning" and "pull access denied" in e.message for e in events)
    assert any(e.reason == "BackOff" and e.message.startswith("Back-off pulling image") for e in events)
    emulator.faults.heal(namespace, selector={"diploi.io/component": "web"})
    eventually(lambda: ready(pods_of(core, namespace, WEB)[0]), timeout=10, message="pulled after the heal")


def test_it_leaves_pods_no_node_fits_pending_as_the_scheduler_says(emulator, apps, core, namespace):
    emulator.faults.unschedulable(namespace, selector={"diploi.io/component": "web"}, reason="1 Insufficient memory")
    apply(apps.patch_namespaced_deployment, "web", namespace, body=deployment("web", namespace))

    def unschedulable():
        pods = pods_of(core, namespace, WEB)
        conditions = pods and pods[0].status.conditions or []
        return next((c for c in conditions if c.type == "PodScheduled" and c.status == "False"), None)

    condition = eventually(unschedulable, message="PodScheduled False")
    assert condition.reason == "Unschedulable"
    assert condition.message.startswith("0/1 nodes are available: 1 Insufficient memory.")
    # The scheduler writes the condition, then records its event: wait for the event too.
    events = eventually(
        lambda: [e for e in core.list_namespaced_event(namespace).items if e.reason == "FailedScheduling"],
        message="the FailedScheduling event",
    )
    assert events[0].type == "Warning" and events[0].message == condition.message
    assert pods_of(core, namespace, WEB)[0].status.phase == "Pending"
    emulator.faults.heal(namespace, selector={"diploi.io/component": "web"})
    eventually(lambda: ready(pods_of(core, namespace, WEB)[0]), message="scheduled after the heal")


def test_it_fails_an_init_container_as_a_failed_git_clone_does(emulator, core, namespace):
    emulator.faults.crash(namespace, exit_code=128, containers=["clone"])
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "dev"},
            "spec": {
                "initContainers": [{"name": "clone", "image": "alpine/git:2.47.2"}],
                "containers": [{"name": "app", "image": "busybox:1.36"}],
            },
        },
    )

    def clone_failing():
        init = core.read_namespaced_pod("dev", namespace).status.init_container_statuses
        return init and init[0].restart_count >= 1 and init[0]

    init = eventually(clone_failing, message="the clone init container failing")
    assert init.last_state.terminated.exit_code == 128
    assert core.read_namespaced_pod("dev", namespace).status.phase == "Pending"


def test_it_fails_readiness_probes_as_a_kubelet_reports_them_and_never_kills(emulator, apps, core, namespace):
    apply(apps.patch_namespaced_deployment, "web", namespace, body=deployment("web", namespace))
    eventually(lambda: ready(pods_of(core, namespace, WEB)[0]), message="ready first")
    emulator.faults.readiness_failure(namespace, selector={"diploi.io/component": "web"})

    def unready_and_reported():
        pod = pods_of(core, namespace, WEB)[0]
        events = core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={pod.metadata.name},reason=Unhealthy"
        ).items
        return not ready(pod) and events and events[0].count >= 2 and (pod, events[0])

    pod, unhealthy = eventually(unready_and_reported, message="unready, the failed probes reported")
    assert (unhealthy.type, unhealthy.message) == (
        "Warning",
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
    )
    assert unhealthy.involved_object.field_path == "spec.containers{web}"
    status = pod.status.container_statuses[0]
    assert (status.restart_count, bool(status.state.running)) == (0, True)
    emulator.faults.heal(namespace, selector={"diploi.io/component": "web"})
    eventually(lambda: ready(pods_of(core, namespace, WEB)[0]), message="ready again after the heal")
