"""The metrics API, read the way clients read it: through CustomObjectsApi."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.utils import parse_quantity

from .conftest import apply, deployment, eventually, pods_of, ready

GROUP, VERSION = "metrics.k8s.io", "v1beta1"


def test_it_reports_usage_for_running_pods(apps, core, custom, namespace):
    apply(apps.patch_namespaced_deployment, "web", namespace, body=deployment("web", namespace, replicas=2))
    apply(
        apps.patch_namespaced_deployment, "worker", namespace, body=deployment("worker", namespace, component="worker")
    )
    eventually(lambda: len([p for p in pods_of(core, namespace) if ready(p)]) == 3)
    listed = custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, "pods", label_selector="diploi.io/component=web"
    )
    assert listed["kind"] == "PodMetricsList" and len(listed["items"]) == 2
    item = listed["items"][0]
    assert item["kind"] == "PodMetrics" and item["metadata"]["namespace"] == namespace
    assert item["window"] and item["timestamp"]
    usage = item["containers"][0]["usage"]
    assert item["containers"][0]["name"] == "web"
    assert usage["cpu"].endswith("n") and usage["memory"].endswith("Ki")
    cpu, memory = parse_quantity(usage["cpu"]), parse_quantity(usage["memory"])
    assert 0 < cpu < parse_quantity("100m")  # below the container's request
    assert 0 < memory < parse_quantity("128Mi")
    one = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "pods", item["metadata"]["name"])
    assert one["containers"][0]["name"] == "web"
    everywhere = custom.list_cluster_custom_object(GROUP, VERSION, "pods")
    assert {i["metadata"]["namespace"] for i in everywhere["items"]} >= {namespace}


def test_it_has_no_metrics_for_pods_not_running(core, custom, namespace):
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "unbound"},
            "spec": {
                "containers": [{"name": "app", "image": "busybox:1.36"}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "missing"}}],
            },
        },
    )
    assert custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "pods")["items"] == []
    with pytest.raises(client.ApiException) as caught:
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "pods", "unbound")
    assert caught.value.status == 404


def test_it_reports_node_usage(custom):
    nodes = custom.list_cluster_custom_object(GROUP, VERSION, "nodes")
    assert [n["metadata"]["name"] for n in nodes["items"]] == ["emulator-node"]
    assert parse_quantity(nodes["items"][0]["usage"]["cpu"]) > 0
