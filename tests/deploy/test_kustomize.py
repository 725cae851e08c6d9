"""The Kubernetes install (deploy/kubernetes): what the example overlay renders is valid and safe to apply.

Rendered with the machine's `kubectl kustomize`, as an operator would; every
object is checked against the pinned Kubernetes schema (kubernetes-validate,
strict: unknown fields refused), then every workload for what a production
install needs: labels, requests and limits, probes, and the restricted Pod
Security Standard.
"""

from __future__ import annotations

import kubernetes_validate
import pytest

from cluster_emulator.schema import KUBERNETES_VERSION
from tests.deploy.kustomize import rendered_overlay

WORKLOAD_KINDS = ("Deployment", "Job")
RESTRICTED_VOLUME_TYPES = {"emptyDir", "configMap", "secret", "projected", "downwardAPI", "persistentVolumeClaim"}


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return rendered_overlay()


def _by_kind(objects, kind) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def _named(objects, kind, name) -> dict:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert found, f"no {kind} {name}"
    return found[0]


def _containers(pod_spec: dict) -> list[dict]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def test_every_object_is_valid_for_the_pinned_kubernetes_schema(objects):
    assert len(objects) > 10
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_it_installs_web_worker_watcher_and_ssh_gateway_with_a_migration_job(objects):
    assert {o["metadata"]["name"] for o in _by_kind(objects, "Deployment")} == {
        "diploi-web",
        "diploi-worker",
        "diploi-watcher",
        "diploi-ssh-gateway",
    }
    assert [o["metadata"]["name"] for o in _by_kind(objects, "Job")] == ["diploi-migrate"]
    namespaced = [o for o in objects if o["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding")]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"diploi"}
    for deployment in _by_kind(objects, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container["image"] == "registry.example.com/diploi:0.1.0"
            assert container["args"] == [deployment["metadata"]["name"].removeprefix("diploi-")]


def test_every_workload_is_labelled_and_sized(objects):
    for workload in (o for o in objects if o["kind"] in WORKLOAD_KINDS):
        name = workload["metadata"]["name"]
        pod_labels = workload["spec"]["template"]["metadata"]["labels"]
        for labels in (workload["metadata"]["labels"], pod_labels):
            assert labels["app.kubernetes.io/name"] == "diploi", name
            assert labels["app.kubernetes.io/part-of"] == "diploi", name
            assert labels["app.kubernetes.io/component"] == name.removeprefix("diploi-"), name
        if workload["kind"] == "Deployment":
            assert workload["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        for container in _containers(workload["spec"]["template"]["spec"]):
            resources = container["resources"]
            assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}, (name, container)


def test_every_long_running_container_has_probes_on_its_health_endpoints(objects):
    for deployment in _by_kind(objects, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            ports = {port["name"]: port["containerPort"] for port in container["ports"]}
            assert ports["metrics"] == 8081
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                assert container[probe]["httpGet"]["port"] in ports, (deployment["metadata"]["name"], probe)
        settings = _named(objects, "ConfigMap", _config_map_of(deployment))
        assert settings["data"]["HEALTH_PORT"] == "8081"


def _config_map_of(workload: dict) -> str:
    container = workload["spec"]["template"]["spec"]["containers"][0]
    return next(source["configMapRef"]["name"] for source in container["envFrom"] if "configMapRef" in source)


def test_every_pod_meets_the_restricted_pod_security_standard(objects):
    namespace = _named(objects, "Namespace", "diploi")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for workload in (o for o in objects if o["kind"] in WORKLOAD_KINDS):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert not any(pod.get(key) for key in ("hostNetwork", "hostPID", "hostIPC")), name
        for volume in pod.get("volumes", []):
            assert set(volume) - {"name"} <= RESTRICTED_VOLUME_TYPES, (name, volume)
        for container in _containers(pod):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["capabilities"] == {"drop": ["ALL"]}, (name, container["name"])
            assert context["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert not context.get("privileged"), (name, container["name"])
            # The read-only root filesystem needs somewhere to write temporary files.
            assert "/tmp" in {mount["mountPath"] for mount in container["volumeMounts"]}, (name, container["name"])


def test_only_processes_that_talk_to_the_cluster_get_a_service_account_token(objects):
    accounts = {o["metadata"]["name"]: o for o in _by_kind(objects, "ServiceAccount")}
    bound = {s["name"] for b in _by_kind(objects, "ClusterRoleBinding") for s in b["subjects"]}
    for workload in (o for o in objects if o["kind"] in WORKLOAD_KINDS):
        pod = workload["spec"]["template"]["spec"]
        account = pod["serviceAccountName"]
        assert account in accounts
        mounts_token = pod.get("automountServiceAccountToken", accounts[account].get("automountServiceAccountToken"))
        assert (mounts_token is not False) == (account in bound), workload["metadata"]["name"]


def test_every_deployment_has_a_disruption_budget_and_the_web_a_service_and_an_ingress(objects):
    budgets = {
        tuple(sorted(b["spec"]["selector"]["matchLabels"].items())) for b in _by_kind(objects, "PodDisruptionBudget")
    }
    for deployment in _by_kind(objects, "Deployment"):
        assert tuple(sorted(deployment["spec"]["selector"]["matchLabels"].items())) in budgets
    web = _named(objects, "Deployment", "diploi-web")
    service = _named(objects, "Service", "diploi-web")
    assert service["spec"]["selector"].items() <= web["spec"]["template"]["metadata"]["labels"].items()
    ingress = _named(objects, "Ingress", "diploi-web")
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == "diploi-web"


def test_settings_and_secrets_come_from_the_overlay(objects):
    web = _named(objects, "Deployment", "diploi-web")
    sources = web["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    secret = _named(objects, "Secret", next(s["secretRef"]["name"] for s in sources if "secretRef" in s))
    assert set(secret["data"]) == {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "SECRETS_ENCRYPTION_KEY"}
    settings = _named(objects, "ConfigMap", _config_map_of(web))
    assert settings["data"]["ALLOWED_HOSTS"] == "diploi.example.com"
    assert settings["data"]["LOG_FORMAT"] == "json"
    assert settings["data"]["DEBUG"] == "0"


def test_the_ssh_gateway_is_reachable_from_outside_on_port_22(objects):
    gateway = _named(objects, "Deployment", "diploi-ssh-gateway")
    service = _named(objects, "Service", "diploi-ssh-gateway")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["selector"].items() <= gateway["spec"]["template"]["metadata"]["labels"].items()
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    (rule,) = service["spec"]["ports"]
    assert rule["port"] == 22 and ports[rule["targetPort"]] == 2222
    assert {"name": "SSH_LISTEN", "value": "0.0.0.0:2222"} in container["env"]
