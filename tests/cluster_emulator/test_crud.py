"""Create, read, list, replace and delete through the official client over HTTP."""

from __future__ import annotations

import base64

import pytest
from kubernetes import client

from .conftest import eventually, status_body


def configmap(name: str, labels: dict | None = None, data: dict | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": data or {"key": "value"}}


def test_it_serves_version_discovery_and_health(emulator, api_client):
    version = client.VersionApi(api_client).get_code()
    assert version.major == "1" and version.minor == "37"
    assert "emulator" in version.git_version
    groups = {g.name for g in client.ApisApi(api_client).get_api_versions().groups}
    assert {"apps", "batch", "networking.k8s.io", "cert-manager.io", "metrics.k8s.io"} <= groups
    core_resources = {r.name for r in client.CoreV1Api(api_client).get_api_resources().resources}
    assert {"pods", "pods/status", "namespaces", "persistentvolumeclaims", "events"} <= core_resources
    assert client.CoreApi(api_client).get_api_versions().versions == ["v1"]
    health = api_client.call_api("GET", emulator.url + "/healthz")
    assert health.status == 200 and health.read() == b"ok"


def test_it_creates_gets_and_lists_with_server_metadata(core, namespace):
    created = core.create_namespaced_config_map(namespace, configmap("settings"))
    meta = created.metadata
    assert meta.uid and meta.creation_timestamp and meta.namespace == namespace
    assert int(meta.resource_version) > 0
    assert meta.generation is None  # ConfigMaps have no spec, hence no generation
    fetched = core.read_namespaced_config_map("settings", namespace)
    assert fetched.metadata.uid == meta.uid and fetched.data == {"key": "value"}
    listed = core.list_namespaced_config_map(namespace)
    assert "settings" in [c.metadata.name for c in listed.items]
    assert int(listed.metadata.resource_version) >= int(meta.resource_version)
    everywhere = core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={namespace}")
    assert {c.metadata.name for c in everywhere.items} == {"settings", "kube-root-ca.crt"}


def test_it_bumps_resource_version_on_every_write(core, namespace):
    first = core.create_namespaced_config_map(namespace, configmap("counter"))
    second = core.patch_namespaced_config_map("counter", namespace, {"data": {"key": "other"}})
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)


def test_it_answers_409_already_exists(core, namespace):
    core.create_namespaced_config_map(namespace, configmap("taken"))
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_config_map(namespace, configmap("taken"))
    assert caught.value.status == 409
    status = status_body(caught.value)
    assert status["kind"] == "Status" and status["status"] == "Failure"
    assert status["reason"] == "AlreadyExists" and status["code"] == 409
    assert status["message"] == 'configmaps "taken" already exists'
    assert status["details"] == {"name": "taken", "kind": "configmaps"}


def test_it_answers_404_for_missing_objects_and_namespaces(core, apps, namespace):
    with pytest.raises(client.ApiException) as caught:
        core.read_namespaced_config_map("nope", namespace)
    assert caught.value.status == 404
    assert status_body(caught.value)["message"] == 'configmaps "nope" not found'
    with pytest.raises(client.ApiException) as caught:
        apps.read_namespaced_deployment("nope", namespace)
    assert status_body(caught.value)["message"] == 'deployments.apps "nope" not found'
    assert status_body(caught.value)["details"]["group"] == "apps"
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_config_map("no-such-namespace", configmap("x"))
    assert caught.value.status == 404
    assert status_body(caught.value)["message"] == 'namespaces "no-such-namespace" not found'


def test_it_answers_404_for_unknown_paths_and_405_for_unknown_verbs(emulator, api_client, namespace):
    response = api_client.call_api("GET", emulator.url + "/apis/example.com/v1/widgets")
    assert response.status == 404
    response = api_client.call_api(
        "POST",
        emulator.url + f"/api/v1/namespaces/{namespace}/configmaps/x",
        header_params={"Content-Type": "application/json"},
        body={},
    )
    assert response.status == 405
    response = api_client.call_api(
        "PUT",
        emulator.url + f"/api/v1/namespaces/{namespace}/configmaps",
        header_params={"Content-Type": "application/json"},
        body={},
    )
    assert response.status == 405


def test_it_filters_lists_by_label_selector(core, namespace):
    for name, labels in (("a", {"app": "web", "tier": "front"}), ("b", {"app": "db"}), ("c", {"app": "cache"})):
        core.create_namespaced_config_map(namespace, configmap(name, labels))

    def names(selector: str) -> set[str]:
        return {c.metadata.name for c in core.list_namespaced_config_map(namespace, label_selector=selector).items}

    assert names("app=web") == {"a"}
    assert names("app==web") == {"a"}
    assert names("app!=web") == {"b", "c", "kube-root-ca.crt"}
    assert names("tier") == {"a"}
    assert names("!tier") == {"b", "c", "kube-root-ca.crt"}
    assert names("app in (web,db)") == {"a", "b"}
    assert names("app notin (web)") == {"b", "c", "kube-root-ca.crt"}
    assert names("app,app notin (web, db)") == {"c"}
    with pytest.raises(client.ApiException) as caught:
        names("app in web")
    assert caught.value.status == 400


def test_it_filters_lists_by_field_selector(core, namespace):
    core.create_namespaced_config_map(namespace, configmap("one"))
    core.create_namespaced_config_map(namespace, configmap("two"))
    found = core.list_namespaced_config_map(namespace, field_selector="metadata.name=two").items
    assert [c.metadata.name for c in found] == ["two"]
    found = core.list_namespaced_config_map(namespace, field_selector="metadata.name!=two").items
    assert "two" not in [c.metadata.name for c in found]
    with pytest.raises(client.ApiException) as caught:
        core.list_namespaced_config_map(namespace, field_selector="data.key=value")
    assert caught.value.status == 400
    assert "not a known field selector" in status_body(caught.value)["message"]


def test_it_paginates_lists(core, namespace):
    for i in range(5):
        core.create_namespaced_config_map(namespace, configmap(f"page-{i}", {"paged": "yes"}))
    page = core.list_namespaced_config_map(namespace, label_selector="paged=yes", limit=2)
    seen = [c.metadata.name for c in page.items]
    while page.metadata._continue:
        page = core.list_namespaced_config_map(
            namespace, label_selector="paged=yes", limit=2, _continue=page.metadata._continue
        )
        seen += [c.metadata.name for c in page.items]
    assert seen == [f"page-{i}" for i in range(5)]


def test_it_replaces_and_detects_stale_resource_versions(core, namespace):
    created = core.create_namespaced_config_map(namespace, configmap("swap"))
    created.data = {"key": "new"}
    replaced = core.replace_namespaced_config_map("swap", namespace, created)
    assert replaced.data == {"key": "new"}
    created.data = {"key": "stale"}  # still carries the old resourceVersion
    with pytest.raises(client.ApiException) as caught:
        core.replace_namespaced_config_map("swap", namespace, created)
    assert caught.value.status == 409
    status = status_body(caught.value)
    assert status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]
    with pytest.raises(client.ApiException) as caught:
        core.replace_namespaced_config_map("absent", namespace, configmap("absent"))
    assert caught.value.status == 404


def test_it_deletes_and_answers_with_a_status(core, apps, namespace):
    core.create_namespaced_config_map(namespace, configmap("doomed"))
    status = core.delete_namespaced_config_map("doomed", namespace)  # this client returns a plain dict here
    assert status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"]["name"] == "doomed" and status["details"]["kind"] == "configmaps"
    with pytest.raises(client.ApiException) as caught:
        core.delete_namespaced_config_map("doomed", namespace)
    assert caught.value.status == 404


def test_it_supports_dry_run(core, namespace):
    core.create_namespaced_config_map(namespace, configmap("dry"), dry_run="All")
    with pytest.raises(client.ApiException):
        core.read_namespaced_config_map("dry", namespace)


def test_it_fills_in_server_side_defaults(core, namespace):
    service = core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "name": "http"}]},
        },
    )
    assert service.spec.cluster_ip.startswith("10.96.")
    assert service.spec.type == "ClusterIP"
    assert service.spec.ports[0].protocol == "TCP" and service.spec.ports[0].target_port == 80
    secret = core.create_namespaced_secret(
        namespace, {"metadata": {"name": "creds"}, "stringData": {"password": "hunter2"}}
    )
    assert secret.type == "Opaque" and secret.string_data is None
    assert base64.b64decode(secret.data["password"]) == b"hunter2"
    ns = core.read_namespace(namespace)
    assert ns.status.phase == "Active"
    assert ns.metadata.labels["kubernetes.io/metadata.name"] == namespace
    assert ns.spec.finalizers == ["kubernetes"]


def test_it_canonicalizes_quantities(core, namespace):
    claim = core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "0.5Gi"}}},
        },
    )
    assert claim.spec.resources.requests["storage"] == "512Mi"
    assert claim.spec.storage_class_name == "standard"
    assert "kubernetes.io/pvc-protection" in claim.metadata.finalizers


def test_it_generates_names(core, namespace):
    created = core.create_namespaced_config_map(namespace, {"metadata": {"generateName": "gen-"}, "data": {}})
    assert created.metadata.name.startswith("gen-") and len(created.metadata.name) == len("gen-") + 5


def test_it_lists_cluster_scoped_objects(core):
    nodes = core.list_node().items
    assert [n.metadata.name for n in nodes] == ["emulator-node"]
    assert nodes[0].metadata.labels["diploi.io/emulated"] == "true"
    assert eventually(lambda: core.read_namespace("kube-system").status.phase == "Active")
