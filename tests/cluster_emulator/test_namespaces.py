"""Namespace lifecycle: default ServiceAccount, Terminating, cascading deletion."""

from __future__ import annotations

import pytest
from kubernetes import client

from .conftest import api_for, apply, eventually, make_namespace, statefulset, status_body


def test_it_gives_a_new_namespace_its_default_service_account(core):
    name = make_namespace(core)
    accounts = [sa.metadata.name for sa in core.list_namespaced_service_account(name).items]
    assert accounts == ["default"]
    eventually(lambda: core.read_namespaced_config_map("kube-root-ca.crt", name))


@pytest.mark.parametrize("own_emulator", [{"service_account_delay": 30}], indirect=True)
def test_it_refuses_pods_before_the_default_service_account_exists(own_emulator):
    with api_for(own_emulator) as api:
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": "fresh"}})
        with pytest.raises(client.ApiException) as caught:
            core.create_namespaced_pod(
                "fresh", {"metadata": {"name": "x"}, "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]}}
            )
        assert caught.value.status == 403
        status = status_body(caught.value)
        assert status["reason"] == "Forbidden"
        assert status["message"] == (
            'pods "x" is forbidden: error looking up service account fresh/default: serviceaccount "default" not found'
        )


def test_it_terminates_a_namespace_then_removes_it_with_its_claims(apps, core):
    name = make_namespace(core)
    apply(apps.patch_namespaced_stateful_set, "db", name, body=statefulset("db", name))
    eventually(lambda: apps.read_namespaced_stateful_set("db", name).status.ready_replicas == 1)
    volume = core.read_namespaced_persistent_volume_claim("data-db-0", name).spec.volume_name
    deleted = core.delete_namespace(name)  # a plain dict with this client
    assert deleted["status"]["phase"] == "Terminating" and deleted["metadata"]["deletionTimestamp"]
    assert core.read_namespace(name).status.phase == "Terminating"

    def gone():
        try:
            core.read_namespace(name)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    eventually(gone, message="namespace removed")
    leftovers = core.list_persistent_volume_claim_for_all_namespaces(field_selector=f"metadata.namespace={name}")
    assert leftovers.items == []
    assert core.list_pod_for_all_namespaces(field_selector=f"metadata.namespace={name}").items == []
    eventually(lambda: volume not in {pv.metadata.name for pv in core.list_persistent_volume().items})


def test_it_forbids_creating_in_a_terminating_namespace(core):
    name = make_namespace(core)
    # A finalizer nobody removes keeps the namespace Terminating until the test lets go.
    core.create_namespaced_config_map(name, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    core.delete_namespace(name)
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_config_map(name, {"metadata": {"name": "late"}})
    assert caught.value.status == 403
    status = status_body(caught.value)
    assert status["message"] == (
        f'configmaps "late" is forbidden: unable to create new content in namespace {name} '
        "because it is being terminated"
    )
    assert status["details"]["causes"][0]["reason"] == "NamespaceTerminating"
    with pytest.raises(client.ApiException) as caught:
        core.delete_namespace(name)
    assert caught.value.status == 409
    eventually(lambda: core.read_namespaced_config_map("held", name).metadata.deletion_timestamp)
    assert core.read_namespace(name).status.phase == "Terminating"
    core.patch_namespaced_config_map("held", name, {"metadata": {"finalizers": None}})

    def gone():
        try:
            core.read_namespace(name)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    eventually(gone)


def test_it_refuses_to_delete_system_namespaces(core):
    with pytest.raises(client.ApiException) as caught:
        core.delete_namespace("default")
    assert caught.value.status == 403
