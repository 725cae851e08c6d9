"""Invalid objects are refused with 422 Invalid, shaped like the real server's answers."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from cluster_emulator import defaults, validation
from cluster_emulator.resources import DEPLOYMENTS

from .conftest import apply, deployment, statefulset, status_body


def invalid(call) -> dict:
    with pytest.raises(client.ApiException) as caught:
        call()
    assert caught.value.status == 422, caught.value.body
    status = status_body(caught.value)
    assert status["kind"] == "Status" and status["reason"] == "Invalid" and status["code"] == 422
    return status


def test_it_refuses_a_container_without_a_name(apps, namespace):
    manifest = deployment("web", namespace)
    del manifest["spec"]["template"]["spec"]["containers"][0]["name"]
    # The typed create refuses this body client-side already; an apply sends it as is.
    status = invalid(lambda: apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest))
    assert status["message"] == (
        'Deployment.apps "web" is invalid: spec.template.spec.containers[0].name: Required value'
    )
    assert status["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.template.spec.containers[0].name"}
    ]
    assert status["details"]["kind"] == "Deployment" and status["details"]["group"] == "apps"


def test_it_refuses_unknown_fields(apps, namespace):
    manifest = deployment("web", namespace)
    manifest["spec"]["template"]["spec"]["containers"][0]["imagePolicy"] = "Always"
    status = invalid(lambda: apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest))
    assert "spec.template.spec.containers[0].imagePolicy" in status["message"]
    assert "unknown field" in status["message"]


def test_it_refuses_wrong_types(apps, namespace):
    manifest = deployment("web", namespace)
    manifest["spec"]["replicas"] = "two"
    status = invalid(lambda: apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest))
    assert status["details"]["causes"][0]["field"] == "spec.replicas"


def test_it_refuses_invalid_names_and_labels(core, namespace):
    status = invalid(lambda: core.create_namespaced_config_map(namespace, {"metadata": {"name": "Not_Valid"}}))
    assert status["details"]["causes"][0]["field"] == "metadata.name"
    assert "RFC 1123 subdomain" in status["message"]
    status = invalid(lambda: core.create_namespace({"metadata": {"name": "has.dots"}}))
    assert "RFC 1123 label" in status["message"]
    status = invalid(
        lambda: core.create_namespaced_service(
            namespace, {"metadata": {"name": "1st"}, "spec": {"ports": [{"port": 80}]}}
        )
    )
    assert "DNS-1035 label" in status["message"]
    status = invalid(
        lambda: core.create_namespaced_config_map(
            namespace, {"metadata": {"name": "ok", "labels": {"team": "not ok!"}}}
        )
    )
    assert status["details"]["causes"][0]["field"] == "metadata.labels"
    status = invalid(lambda: core.create_namespaced_config_map(namespace, {"metadata": {}}))
    assert "name or generateName is required" in status["message"]


def test_it_refuses_a_selector_that_does_not_match_the_template(apps, namespace):
    manifest = deployment("web", namespace)
    manifest["spec"]["selector"]["matchLabels"] = {"app": "other"}
    status = invalid(lambda: apps.create_namespaced_deployment(namespace, manifest))
    assert "`selector` does not match template `labels`" in status["message"]


def test_it_refuses_changes_to_immutable_fields(apps, namespace):
    manifest = statefulset("db", namespace)
    apply(apps.patch_namespaced_stateful_set, "db", namespace, body=manifest)
    manifest["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "5Gi"
    status = invalid(lambda: apply(apps.patch_namespaced_stateful_set, "db", namespace, body=manifest))
    assert "updates to statefulset spec for fields other than" in status["message"]
    manifest = deployment("web", namespace)
    apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)
    patch = {
        "spec": {"selector": {"matchLabels": {"extra": "x"}}, "template": {"metadata": {"labels": {"extra": "x"}}}}
    }
    status = invalid(lambda: apps.patch_namespaced_deployment("web", namespace, patch))
    assert "spec.selector" in status["message"] and "field is immutable" in status["message"]


def test_it_refuses_mismatched_namespaces_with_400(core, namespace):
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "x", "namespace": "elsewhere"}})
    assert caught.value.status == 400
    assert "does not match the namespace" in status_body(caught.value)["message"]


def test_it_checks_the_shape_of_certificates(custom, namespace):
    body = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "c"},
        "spec": {"dnsNames": ["a.example.com"], "issuerRef": {"name": "letsencrypt"}},
    }
    status = invalid(
        lambda: custom.create_namespaced_custom_object("cert-manager.io", "v1", namespace, "certificates", body)
    )
    assert status["details"]["causes"][0]["field"] == "spec.secretName"


def test_it_validates_cheaply():
    manifest = deployment("web", "default")
    defaults.apply_defaults(DEPLOYMENTS, manifest, creating=False)
    validation.validate(DEPLOYMENTS, manifest)  # builds and caches the validator
    rounds = 200
    started = time.perf_counter()
    for _ in range(rounds):
        validation.validate(DEPLOYMENTS, manifest)
    per_object = (time.perf_counter() - started) / rounds
    assert per_object < 0.005, f"{per_object * 1000:.2f} ms per object"


MSG_STS_FIXED = (
    'StatefulSet.apps "db" is invalid: spec: Forbidden: updates to statefulset spec for fields other than '
    "'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
    "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)


def test_it_refuses_a_new_service_name_on_a_statefulset_as_a_real_server_words_it(apps, namespace):
    manifest = statefulset("db", namespace)
    apply(apps.patch_namespaced_stateful_set, "db", namespace, body=manifest)
    manifest["spec"]["serviceName"] = "db-headless"
    status = invalid(lambda: apply(apps.patch_namespaced_stateful_set, "db", namespace, body=manifest))
    assert status["message"] == MSG_STS_FIXED
    assert status["details"]["causes"] == [
        {"reason": "FieldValueForbidden", "message": MSG_STS_FIXED.split("spec: ", 1)[1], "field": "spec"}
    ]
    # A strategic-merge patch or a replace is refused the same way; the stored object is untouched.
    status = invalid(lambda: apps.patch_namespaced_stateful_set("db", namespace, {"spec": {"serviceName": "x"}}))
    assert status["message"] == MSG_STS_FIXED
    assert apps.read_namespaced_stateful_set("db", namespace).spec.service_name == "db"


def test_it_lets_the_mutable_statefulset_fields_change(apps, namespace):
    manifest = statefulset("db", namespace)
    apply(apps.patch_namespaced_stateful_set, "db", namespace, body=manifest)
    manifest["spec"].update(
        replicas=2,
        minReadySeconds=5,
        revisionHistoryLimit=4,
        updateStrategy={"type": "OnDelete"},
        persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Retain"},
    )
    manifest["spec"]["template"]["metadata"]["annotations"] = {"changed": "yes"}
    stored = apply(apps.patch_namespaced_stateful_set, "db", namespace, body=manifest)
    assert (stored.spec.replicas, stored.spec.min_ready_seconds, stored.spec.update_strategy.type) == (2, 5, "OnDelete")
    for fixed in ({"podManagementPolicy": "Parallel"}, {"selector": {"matchLabels": {"app.kubernetes.io/name": "db"}}}):
        changed = {**manifest, "spec": {**manifest["spec"], **fixed}}
        status = invalid(lambda body=changed: apply(apps.patch_namespaced_stateful_set, "db", namespace, body=body))
        assert status["message"] == MSG_STS_FIXED


def headless_service(name: str, cluster_ip: str | None = "None") -> dict:
    spec = {"selector": {"app": name}, "ports": [{"name": "main", "port": 5432}]}
    if cluster_ip is not None:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def test_it_refuses_a_cluster_ip_change_of_a_headless_service_and_back(core, namespace):
    apply(core.patch_namespaced_service, "db-headless", namespace, body=headless_service("db-headless"))
    stored = core.read_namespaced_service("db-headless", namespace)
    assert (stored.spec.cluster_ip, stored.spec.cluster_ips) == ("None", ["None"])
    status = invalid(
        lambda: apply(
            core.patch_namespaced_service, "db-headless", namespace, body=headless_service("db-headless", "10.96.7.7")
        )
    )
    assert status["message"] == (
        'Service "db-headless" is invalid: spec.clusterIPs[0]: Invalid value: []string{"10.96.7.7"}: '
        "may not change once set"
    )
    assert status["details"]["causes"][0]["field"] == "spec.clusterIPs[0]"
    # Omitting it (a replace that leaves it out) keeps it headless, as the real server does.
    body = headless_service("db-headless", None)
    body["metadata"]["resourceVersion"] = stored.metadata.resource_version
    assert core.replace_namespaced_service("db-headless", namespace, body).spec.cluster_ip == "None"

    apply(core.patch_namespaced_service, "db", namespace, body=headless_service("db", None))
    allocated = core.read_namespaced_service("db", namespace).spec.cluster_ip
    assert allocated != "None"
    status = invalid(lambda: apply(core.patch_namespaced_service, "db", namespace, body=headless_service("db")))
    assert status["message"] == (
        'Service "db" is invalid: spec.clusterIPs[0]: Invalid value: []string{"None"}: may not change once set'
    )
    assert core.read_namespaced_service("db", namespace).spec.cluster_ip == allocated
