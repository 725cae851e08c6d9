"""Self-heal, level-triggered: what the cluster lost or someone changed by hand is restored by the
real watcher and worker, and recorded as drift corrected. The hand is the official client."""

import pytest
from kubernetes import client

from deployments import services
from deployments.models import ActivityEntry, Deployment, DeploymentStatus, Operation
from tests.support import built, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live(worker, watcher, emulator, make_project, developer):
    deployment = built(
        services.deployment_create(
            project=make_project("static-nginx"), name="site", stage="production", actor=developer
        )
    )
    wait_for(
        lambda: Operation.objects.filter(deployment=deployment, status=Operation.Status.SUCCEEDED).exists(),
        timeout=60,
        what="the create to take effect",
    )
    return Deployment.objects.get(pk=deployment.pk)


@pytest.fixture
def hand(emulator):
    with client.ApiClient(emulator.configuration()) as api:
        yield api


def corrected(deployment) -> list[str]:
    return list(
        ActivityEntry.objects.filter(deployment=deployment, action="deployment.drift_corrected").values_list(
            "message", flat=True
        )
    )


def test_a_service_and_the_ingress_deleted_by_hand_are_restored(live, hand):
    core, networking = client.CoreV1Api(hand), client.NetworkingV1Api(hand)
    core.delete_namespaced_service("web", live.namespace)
    networking.delete_namespaced_ingress("public", live.namespace)

    wait_for(lambda: corrected(live), timeout=30, what="the drift to be corrected")
    assert "Service web was deleted" in corrected(live)[0]
    wait_for(
        lambda: (
            core.read_namespaced_service("web", live.namespace)
            and networking.read_namespaced_ingress("public", live.namespace)
        ),
        timeout=30,
        what="the Service and the Ingress back",
    )
    wait_for(lambda: DeploymentStatus.objects.get(deployment=live).health == "green", timeout=30, what="green")


def test_a_workload_scaled_by_hand_is_scaled_back(live, hand):
    apps = client.AppsV1Api(hand)
    wanted = apps.read_namespaced_deployment("web", live.namespace).spec.replicas
    apps.patch_namespaced_deployment_scale("web", live.namespace, {"spec": {"replicas": 0}})

    wait_for(lambda: corrected(live), timeout=30, what="the drift to be corrected")
    assert "web was scaled to 0 by hand" in corrected(live)[0]
    wait_for(
        lambda: apps.read_namespaced_deployment("web", live.namespace).spec.replicas == wanted,
        timeout=30,
        what="the replicas restored",
    )
    wait_for(lambda: DeploymentStatus.objects.get(deployment=live).health == "green", timeout=30, what="green")


def test_a_service_that_routes_to_no_ready_pod_is_red_and_green_again_once_it_does(live, hand):
    """The pods serve, but the Service's selector was changed by hand: nothing reaches the public host."""
    core = client.CoreV1Api(hand)
    selector = core.read_namespaced_service("web", live.namespace).spec.selector
    key = sorted(selector)[0]

    def status():
        return DeploymentStatus.objects.filter(deployment=live).values_list("health", "reason").first()

    def broken_and_red() -> bool:
        # The hand keeps it broken: a reconcile of the create still under way may apply it again once.
        if core.read_namespaced_service("web", live.namespace).spec.selector[key] != "nobody":
            core.patch_namespaced_service("web", live.namespace, {"spec": {"selector": {key: "nobody"}}})
        return status()[0] == "red"

    wait_for(broken_and_red, timeout=30, what="red")
    assert "no ready endpoint behind" in status()[1] and "the Service web routes to none" in status()[1]
    core.patch_namespaced_service("web", live.namespace, {"spec": {"selector": {key: selector[key]}}})
    wait_for(lambda: status()[0] == "green", timeout=30, what="green again")


def test_an_image_changed_by_hand_is_changed_back(live, hand):
    apps = client.AppsV1Api(hand)
    container = apps.read_namespaced_deployment("web", live.namespace).spec.template.spec.containers[0]
    wanted = container.image
    patch = {"spec": {"template": {"spec": {"containers": [{"name": container.name, "image": "nginx:1.0-hand"}]}}}}
    apps.patch_namespaced_deployment("web", live.namespace, patch)

    wait_for(lambda: corrected(live), timeout=30, what="the drift to be corrected")
    assert f"the image of {container.name} was changed to nginx:1.0-hand by hand" in corrected(live)[0]
    wait_for(
        lambda: apps.read_namespaced_deployment("web", live.namespace).spec.template.spec.containers[0].image == wanted,
        timeout=30,
        what="the image restored",
    )
    wait_for(lambda: DeploymentStatus.objects.get(deployment=live).health == "green", timeout=30, what="green")
