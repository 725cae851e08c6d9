"""The emulator admits pods against the namespace's ResourceQuota as a real API server does (issue 15,
items 3 and 14): a pod must say what it wants once CPU or memory is under quota (LimitRange defaults
count), and may not take the namespace past it."""

from __future__ import annotations

import pytest
from kubernetes import client

from .conftest import apply, deployment, eventually, pods_of, status_body


def quota(core, namespace: str, hard: dict) -> None:
    core.create_namespaced_resource_quota(namespace, {"metadata": {"name": "size"}, "spec": {"hard": hard}})


def pod(name: str, resources: dict | None = None) -> dict:
    container = {"name": "app", "image": "python:3.12.8-slim"}
    if resources is not None:
        container["resources"] = resources
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container]}}


def refusal(core, namespace: str, body: dict) -> str:
    with pytest.raises(client.ApiException) as raised:
        core.create_namespaced_pod(namespace, body)
    assert raised.value.status == 403
    return status_body(raised.value)["message"]


def test_a_pod_must_say_what_it_wants_once_the_namespace_has_a_quota(core, namespace):
    quota(core, namespace, {"limits.cpu": "1", "requests.memory": "1Gi"})
    assert refusal(core, namespace, pod("bare")) == (
        'pods "bare" is forbidden: failed quota: size: must specify limits.cpu for: app; requests.memory for: app'
    )
    core.create_namespaced_pod(namespace, pod("sized", {"limits": {"cpu": "500m", "memory": "256Mi"}}))
    assert [p.metadata.name for p in pods_of(core, namespace)] == ["sized"]


def test_the_limit_ranges_defaults_count_as_said(core, namespace):
    quota(core, namespace, {"limits.cpu": "1", "requests.cpu": "1"})
    core.create_namespaced_limit_range(
        namespace,
        {
            "metadata": {"name": "size"},
            "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "250m"}}]},
        },
    )
    core.create_namespaced_pod(namespace, pod("first"))
    core.create_namespaced_pod(namespace, pod("second"))
    assert refusal(core, namespace, pod("third")) == (
        'pods "third" is forbidden: exceeded quota: size, requested: limits.cpu=500m, used: limits.cpu=1, '
        "limited: limits.cpu=1"
    )


def test_a_pod_may_not_take_the_namespace_past_its_quota(core, namespace):
    quota(core, namespace, {"pods": "2", "requests.cpu": "200m"})
    core.create_namespaced_pod(namespace, pod("first", {"requests": {"cpu": "150m"}}))
    assert refusal(core, namespace, pod("second", {"requests": {"cpu": "100m"}})) == (
        'pods "second" is forbidden: exceeded quota: size, requested: requests.cpu=100m, used: requests.cpu=150m, '
        "limited: requests.cpu=200m"
    )
    core.create_namespaced_pod(namespace, pod("small", {"requests": {"cpu": "50m"}}))
    assert "requested: pods=1,requests.cpu=10m, used: pods=2,requests.cpu=200m" in refusal(
        core, namespace, pod("one-too-many", {"requests": {"cpu": "10m"}})
    )


def test_a_workload_beyond_the_quota_gets_what_fits_and_a_failed_create(core, apps, namespace):
    quota(core, namespace, {"requests.cpu": "250m"})
    apply(apps.patch_namespaced_deployment, "web", namespace, body=deployment("web", namespace, replicas=3))

    def failed_create():
        events = core.list_namespaced_event(namespace).items
        return [e for e in events if e.reason == "FailedCreate" and "exceeded quota: size" in e.message]

    eventually(failed_create, message="a FailedCreate event naming the quota")
    assert len(pods_of(core, namespace)) == 2
