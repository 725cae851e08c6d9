"""EndpointSlices: the emulator's endpointslice-controller keeps one per Service with a selector, from
the pods it selects, as a real cluster does; and the API refuses what a real one refuses."""

from __future__ import annotations

import pytest
from kubernetes import client

from .conftest import deployment, eventually, status_body

SERVICE_NAME = "kubernetes.io/service-name"


@pytest.fixture
def discovery(api_client):
    return client.DiscoveryV1Api(api_client)


def service(name: str, *, selector: dict | None = None, labels: dict | None = None) -> dict:
    spec = {"ports": [{"name": "main", "port": 80, "targetPort": "http", "protocol": "TCP"}]}
    if selector is not None:
        spec["selector"] = selector
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def slices_of(discovery, namespace: str, name: str) -> list:
    return discovery.list_namespaced_endpoint_slice(namespace, label_selector=f"{SERVICE_NAME}={name}").items


def ready_addresses(discovery, namespace: str, name: str) -> list[str]:
    return sorted(
        address
        for item in slices_of(discovery, namespace, name)
        for endpoint in item.endpoints or ()
        if endpoint.conditions.ready
        for address in endpoint.addresses
    )


def test_a_service_gets_a_slice_of_its_ready_pods_labelled_and_owned_like_a_real_clusters(
    core, apps, discovery, namespace
):
    selector = {"app.kubernetes.io/name": "web"}
    created = core.create_namespaced_service(namespace, service("web", selector=selector, labels={"team": "a"}))
    apps.create_namespaced_deployment(namespace, deployment("web", namespace, replicas=2))
    eventually(lambda: len(ready_addresses(discovery, namespace, "web")) == 2, message="two ready endpoints")

    (item,) = slices_of(discovery, namespace, "web")
    assert item.metadata.name.startswith("web-") and item.address_type == "IPv4"
    assert item.metadata.labels == {
        "team": "a",  # the Service's own labels are copied
        SERVICE_NAME: "web",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    }
    owner = item.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("Service", "web", created.metadata.uid, True)
    assert [(p.name, p.port, p.protocol) for p in item.ports] == [("main", 8080, "TCP")]  # "http" resolved
    pods = {p.metadata.name: p for p in core.list_namespaced_pod(namespace).items}
    for endpoint in item.endpoints:
        pod = pods[endpoint.target_ref.name]
        assert endpoint.addresses == [pod.status.pod_ip] and endpoint.target_ref.kind == "Pod"
        assert (endpoint.conditions.ready, endpoint.conditions.serving, endpoint.conditions.terminating) == (
            True,
            True,
            False,
        )

    # Nothing selected any more: the slice stays, empty, without ports (a real cluster's placeholder).
    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 0}})
    eventually(lambda: not slices_of(discovery, namespace, "web")[0].endpoints, message="no endpoint left")
    assert not slices_of(discovery, namespace, "web")[0].ports

    core.delete_namespaced_service("web", namespace)
    eventually(lambda: not slices_of(discovery, namespace, "web"), message="the slice goes with its Service")


def test_a_slice_deleted_by_hand_comes_back_and_one_without_a_selector_is_removed(core, apps, discovery, namespace):
    core.create_namespaced_service(namespace, service("web", selector={"app.kubernetes.io/name": "web"}))
    apps.create_namespaced_deployment(namespace, deployment("web", namespace))
    eventually(lambda: ready_addresses(discovery, namespace, "web"), message="a ready endpoint")
    name = slices_of(discovery, namespace, "web")[0].metadata.name
    discovery.delete_namespaced_endpoint_slice(name, namespace)
    eventually(lambda: ready_addresses(discovery, namespace, "web"), message="the slice restored")

    # A selector that matches nothing, then none at all: an empty slice, then no slice of the controller's.
    core.patch_namespaced_service("web", namespace, {"spec": {"selector": {"app.kubernetes.io/name": "other"}}})
    eventually(lambda: not ready_addresses(discovery, namespace, "web"), message="nothing selected")
    core.create_namespaced_service(namespace, service("manual"))
    assert not slices_of(discovery, namespace, "manual")


def test_it_refuses_what_a_real_api_server_refuses(discovery, namespace):
    def body(**changes) -> dict:
        return {
            "metadata": {"name": "manual-1", "labels": {SERVICE_NAME: "manual"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.5"]}],
            "ports": [{"name": "main", "port": 8080, "protocol": "TCP"}],
            **changes,
        }

    for changes, field in (
        ({"addressType": "IPv5"}, "addressType"),
        ({"endpoints": [{"addresses": ["not-an-ip"]}]}, "endpoints[0].addresses[0]"),
        ({"endpoints": [{"addresses": []}]}, "endpoints[0].addresses"),
        ({"ports": [{"name": "Main", "port": 8080, "protocol": "TCP"}]}, "ports[0].name"),
    ):
        with pytest.raises(client.ApiException) as refused:
            discovery.create_namespaced_endpoint_slice(namespace, body(**changes))
        assert refused.value.status == 422
        assert [c["field"] for c in status_body(refused.value)["details"]["causes"]] == [field]
    discovery.create_namespaced_endpoint_slice(namespace, body())
    with pytest.raises(client.ApiException) as refused:
        discovery.patch_namespaced_endpoint_slice("manual-1", namespace, {"addressType": "IPv6"})
    assert refused.value.status == 422 and "field is immutable" in refused.value.body
