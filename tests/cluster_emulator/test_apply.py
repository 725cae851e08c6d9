"""Server-side apply and the other patch types, through the official client."""

from __future__ import annotations

import pytest
import yaml
from kubernetes import client, watch

from .conftest import APPLY, MANAGER, apply, deployment, eventually, status_body


def test_it_creates_with_apply_and_records_the_field_manager(apps, namespace):
    created = apply(apps.patch_namespaced_deployment, "web", namespace, body=deployment("web", namespace))
    assert created.metadata.generation == 1
    managers = {(m.manager, m.operation) for m in created.metadata.managed_fields}
    assert managers == {(MANAGER, "Apply")}
    fields = created.metadata.managed_fields[0].fields_v1
    assert "f:replicas" in fields["f:spec"]
    containers = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert 'k:{"name":"web"}' in containers


def test_it_updates_with_apply_bumping_generation_only_for_spec_changes(apps, namespace):
    manifest = deployment("web", namespace)
    first = apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)
    manifest["metadata"]["labels"]["extra"] = "label"
    relabelled = apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)
    assert int(relabelled.metadata.resource_version) > int(first.metadata.resource_version)
    assert relabelled.metadata.generation == 1
    manifest["spec"]["replicas"] = 3
    scaled = apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)
    assert scaled.metadata.generation == 2 and scaled.spec.replicas == 3


def test_it_changes_nothing_when_the_same_manifest_is_applied_again(apps, core, namespace):
    manifest = deployment("web", namespace)
    apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)
    settled = eventually(
        lambda: (d := apps.read_namespaced_deployment("web", namespace)).status.ready_replicas == 1 and d
    )
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": namespace},
        "data": {"a": "1"},
    }
    cm = apply(core.patch_namespaced_config_map, "cfg", namespace, body=configmap)
    events = []
    stream = watch.Watch().stream(
        apps.list_namespaced_deployment,
        namespace,
        resource_version=settled.metadata.resource_version,
        timeout_seconds=1,
    )
    again = apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)
    cm_again = apply(core.patch_namespaced_config_map, "cfg", namespace, body=configmap)
    events = [e for e in stream]
    assert again.metadata.resource_version == settled.metadata.resource_version
    assert again.metadata.generation == settled.metadata.generation
    assert cm_again.metadata.resource_version == cm.metadata.resource_version
    assert events == []


def test_it_requires_a_field_manager_for_apply(apps, namespace):
    with pytest.raises(client.ApiException) as caught:
        apps.patch_namespaced_deployment("web", namespace, deployment("web", namespace), _content_type=APPLY)
    assert caught.value.status == 422
    status = status_body(caught.value)
    assert status["reason"] == "Invalid"
    assert "fieldManager: Required value: is required for apply patch" in status["message"]


def test_it_reports_conflicts_with_other_managers_unless_forced(apps, namespace):
    manifest = deployment("web", namespace, replicas=2)
    apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)
    manifest["spec"]["replicas"] = 5
    with pytest.raises(client.ApiException) as caught:
        apps.patch_namespaced_deployment("web", namespace, manifest, field_manager="someone-else", _content_type=APPLY)
    assert caught.value.status == 409
    status = status_body(caught.value)
    assert status["reason"] == "Conflict"
    assert status["message"] == f'Apply failed with 1 conflict: conflict with "{MANAGER}" using apps/v1: .spec.replicas'
    forced = apps.patch_namespaced_deployment(
        "web", namespace, manifest, field_manager="someone-else", force=True, _content_type=APPLY
    )
    assert forced.spec.replicas == 5
    owners = {m.manager: m.fields_v1 for m in forced.metadata.managed_fields}
    assert "f:replicas" in owners["someone-else"]["f:spec"]
    assert "f:replicas" not in owners[MANAGER]["f:spec"]


def test_it_removes_fields_a_manager_stops_applying(apps, namespace):
    manifest = deployment("web", namespace)
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "KEEP", "value": "1"}, {"name": "DROP", "value": "2"}]
    manifest["metadata"]["annotations"] = {"diploi.io/drop": "me"}
    apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)
    container["env"] = [{"name": "KEEP", "value": "1"}]
    del manifest["metadata"]["annotations"]
    updated = apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)
    assert [e.name for e in updated.spec.template.spec.containers[0].env] == ["KEEP"]
    assert "diploi.io/drop" not in (updated.metadata.annotations or {})


def test_it_keeps_fields_other_managers_own(apps, namespace):
    manifest = deployment("web", namespace)
    apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)
    apps.patch_namespaced_deployment(
        "web", namespace, {"metadata": {"annotations": {"owner": "ops"}}}, field_manager="kubectl-annotate"
    )
    eventually(
        lambda: (
            (apps.read_namespaced_deployment("web", namespace).metadata.annotations or {}).get(
                "deployment.kubernetes.io/revision"
            )
            == "1"
        )
    )
    again = apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)
    assert again.metadata.annotations["owner"] == "ops"
    assert again.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert {m.manager for m in again.metadata.managed_fields} >= {MANAGER, "kubectl-annotate"}


def test_it_accepts_yaml_apply_bodies(emulator, api_client, core, namespace):
    body = yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-yaml"}, "data": {"greeting": "hello"}}
    )
    response = api_client.call_api(
        "PATCH",
        f"{emulator.url}/api/v1/namespaces/{namespace}/configmaps/from-yaml?fieldManager={MANAGER}",
        header_params={"Content-Type": APPLY},
        body=body,
    )
    assert response.status == 201
    assert core.read_namespaced_config_map("from-yaml", namespace).data == {"greeting": "hello"}


def test_it_rejects_apply_bodies_for_another_kind_or_name(apps, namespace):
    manifest = deployment("web", namespace)
    with pytest.raises(client.ApiException) as caught:
        apply(apps.patch_namespaced_deployment, "other", namespace, body=manifest)
    assert caught.value.status == 400
    manifest["kind"] = "StatefulSet"
    with pytest.raises(client.ApiException) as caught:
        apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)
    assert caught.value.status == 400


def test_it_merge_patches(core, namespace):
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "m", "labels": {"a": "1", "b": "2"}}, "data": {"x": "1"}}
    )
    patched = core.patch_namespaced_config_map(
        "m", namespace, {"metadata": {"labels": {"a": None, "c": "3"}}}, _content_type="application/merge-patch+json"
    )
    assert patched.metadata.labels == {"b": "2", "c": "3"}


def test_it_strategic_merge_patches_named_list_items(apps, namespace):
    containers = [
        {"name": "web", "image": "nginx:1.27", "env": [{"name": "A", "value": "1"}]},
        {"name": "sidecar", "image": "busybox:1.36"},
    ]
    apply(apps.patch_namespaced_deployment, "web", namespace, body=deployment("web", namespace, containers=containers))
    patch = {
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "web", "image": "nginx:1.28", "env": [{"name": "B", "value": "2"}]}]}
            }
        }
    }
    patched = apps.patch_namespaced_deployment("web", namespace, patch)  # a dict body: strategic merge patch
    by_name = {c.name: c for c in patched.spec.template.spec.containers}
    assert set(by_name) == {"web", "sidecar"}
    assert by_name["web"].image == "nginx:1.28"
    assert [(e.name, e.value) for e in by_name["web"].env] == [("A", "1"), ("B", "2")]
    removal = {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}
    patched = apps.patch_namespaced_deployment("web", namespace, removal)
    assert [c.name for c in patched.spec.template.spec.containers] == ["web"]


def test_it_json_patches(apps, namespace):
    apply(apps.patch_namespaced_deployment, "web", namespace, body=deployment("web", namespace))
    patched = apps.patch_namespaced_deployment(
        "web",
        namespace,
        [
            {"op": "replace", "path": "/spec/replicas", "value": 0},
            {"op": "add", "path": "/metadata/labels/patched", "value": "yes"},
        ],
    )
    assert patched.spec.replicas == 0 and patched.metadata.labels["patched"] == "yes"
    with pytest.raises(client.ApiException) as caught:
        apps.patch_namespaced_deployment("web", namespace, [{"op": "test", "path": "/spec/replicas", "value": 9}])
    assert caught.value.status == 422


def test_it_scales_through_the_scale_subresource(apps, namespace):
    apply(apps.patch_namespaced_deployment, "web", namespace, body=deployment("web", namespace))
    scale = apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 4}})
    assert scale.spec.replicas == 4
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 4
