"""The audit log: each request resolved into what RBAC is asked, as a real API server does."""

from __future__ import annotations

from kubernetes import client, watch

from cluster_emulator.audit import RequestAttributes, attributes_of
from tests.cluster_emulator.conftest import APPLY, MANAGER, api_for


def _resource_calls(records: list[RequestAttributes]) -> list[tuple]:
    return [(r.verbs, r.api_group, r.rbac_resource, r.namespace, r.name) for r in records if r.is_resource_request]


def test_it_records_nothing_until_enabled(own_emulator):
    with api_for(own_emulator) as api:
        client.CoreV1Api(api).list_namespace()
    assert own_emulator.audit.records() == []


def test_it_resolves_the_official_clients_requests(own_emulator):
    own_emulator.audit.enable()
    with api_for(own_emulator) as api:
        api.user_agent = "diploi-tests/1"
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        core.create_namespace({"metadata": {"name": "audited"}})
        core.read_namespace("audited")
        core.list_namespaced_pod("audited", label_selector="a=b")
        core.list_pod_for_all_namespaces()
        apps.patch_namespaced_deployment(
            "web",
            "audited",
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web"},
                "spec": {
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                    },
                },
            },
            field_manager=MANAGER,
            _content_type=APPLY,
        )
        for _ in watch.Watch().stream(apps.list_namespaced_deployment, "audited", timeout_seconds=1):
            break
        core.delete_namespace("audited")
        client.VersionApi(api).get_code()

    records = own_emulator.audit.records()
    assert _resource_calls(records) == [
        (("create",), "", "namespaces", "", ""),
        (("get",), "", "namespaces", "audited", "audited"),
        (("list",), "", "pods", "audited", ""),
        (("list",), "", "pods", "", ""),
        (("patch",), "apps", "deployments", "audited", "web"),
        (("watch",), "apps", "deployments", "audited", ""),
        (("delete",), "", "namespaces", "audited", "audited"),
    ]
    assert {r.user_agent for r in records} == {"diploi-tests/1"}
    assert [r.path for r in records if not r.is_resource_request] == ["/version/"]


def test_it_resolves_subresources_and_streaming_verbs():
    def resolve(method, path, **query):
        found = attributes_of(method, path, query)
        return found.verbs, found.api_group, found.rbac_resource, found.namespace, found.name

    assert resolve("GET", "/api/v1/namespaces/ns/pods/p/log") == (("get",), "", "pods/log", "ns", "p")
    assert resolve("GET", "/api/v1/namespaces/ns/pods/p/exec") == (("get", "create"), "", "pods/exec", "ns", "p")
    assert resolve("POST", "/api/v1/namespaces/ns/pods/p/portforward") == (
        ("create",),
        "",
        "pods/portforward",
        "ns",
        "p",
    )
    assert resolve("PUT", "/api/v1/namespaces/ns/finalize") == (("update",), "", "namespaces/finalize", "ns", "ns")
    assert resolve("GET", "/api/v1/watch/namespaces/ns/pods") == (("watch",), "", "pods", "ns", "")
    assert resolve("DELETE", "/apis/batch/v1/namespaces/ns/jobs") == (("deletecollection",), "batch", "jobs", "ns", "")
    assert resolve("GET", "/apis/metrics.k8s.io/v1beta1/pods") == (("list",), "metrics.k8s.io", "pods", "", "")
    assert attributes_of("GET", "/apis", {}).path == "/apis"
    assert attributes_of("GET", "/apis/apps/v1", {}).path == "/apis/apps/v1"
