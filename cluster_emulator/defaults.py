"""What the API server fills in on write: defaulted fields and canonical quantities.

Defaulting is idempotent (applying it twice changes nothing), so re-applying an
unchanged manifest leaves the stored object, and its resourceVersion, alone.
"""

from __future__ import annotations

import base64

from . import quantity, schema
from .errors import Cause, invalid
from .resources import (
    DEPLOYMENTS,
    JOBS,
    NAMESPACES,
    NETWORKPOLICIES,
    PODS,
    PVCS,
    REPLICASETS,
    SECRETS,
    SERVICES,
    STATEFULSETS,
    Resource,
)

STORAGE_CLASS = "standard"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
_PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
_MODE_VOLUMES = ("secret", "configMap", "projected", "downwardAPI")


def normalize(value, node, path: str = "") -> tuple[object, list[Cause]]:
    """Drop nulls (unset fields) and rewrite quantities in canonical form, guided by the schema."""
    causes: list[Cause] = []
    return _normalize(value, node, path, causes), causes


def _normalize(value, node, path: str, causes: list[Cause]):
    if schema.is_quantity(node) and value is not None:
        try:
            return quantity.canonical(value)
        except quantity.QuantityError as exc:
            causes.append(invalid(path, value, str(exc)))
            return value
    if isinstance(value, dict):
        return {
            k: _normalize(v, schema.child(node, k), f"{path}.{k}" if path else k, causes)
            for k, v in value.items()
            if v is not None
        }
    if isinstance(value, list):
        item = schema.items(node)
        return [_normalize(v, item, f"{path}[{i}]", causes) for i, v in enumerate(value)]
    return value


def apply_defaults(resource: Resource, obj: dict, *, creating: bool) -> None:
    """Fill in the defaults a real API server adds to an object of this kind (in place)."""
    spec = obj.get("spec")
    if resource is PODS and isinstance(spec, dict):
        pod_spec_defaults(spec, template=False)
    elif resource in (DEPLOYMENTS, REPLICASETS, STATEFULSETS, JOBS) and isinstance(spec, dict):
        _workload_defaults(resource, obj, spec, creating)
    elif resource is SERVICES and isinstance(spec, dict):
        _service_defaults(spec)
    elif resource is PVCS and isinstance(spec, dict):
        spec.setdefault("volumeMode", "Filesystem")
        if creating:
            spec.setdefault("storageClassName", STORAGE_CLASS)
            finalizers = obj["metadata"].setdefault("finalizers", [])
            if PVC_PROTECTION not in finalizers:
                finalizers.append(PVC_PROTECTION)
    elif resource is SECRETS:
        _secret_defaults(obj)
    elif resource is NAMESPACES:
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        if creating:
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    elif resource is NETWORKPOLICIES and isinstance(spec, dict) and "policyTypes" not in spec:
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def _workload_defaults(resource: Resource, obj: dict, spec: dict, creating: bool) -> None:
    if resource is not JOBS:
        spec.setdefault("replicas", 1)
    if resource in (DEPLOYMENTS, STATEFULSETS):
        spec.setdefault("revisionHistoryLimit", 10)
    if resource is DEPLOYMENTS:
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxSurge", "25%")
            rolling.setdefault("maxUnavailable", "25%")
    if resource is STATEFULSETS:
        spec.setdefault("podManagementPolicy", "OrderedReady")
        strategy = spec.setdefault("updateStrategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
        policy = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
        policy.setdefault("whenDeleted", "Retain")
        policy.setdefault("whenScaled", "Retain")
        for claim in spec.get("volumeClaimTemplates") or ():
            claim.setdefault("apiVersion", "v1")
            claim.setdefault("kind", "PersistentVolumeClaim")
            claim.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
            claim.setdefault("status", {"phase": "Pending"})
    if resource is JOBS:
        for key, value in (
            ("parallelism", 1),
            ("completions", 1),
            ("backoffLimit", 6),
            ("completionMode", "NonIndexed"),
            ("suspend", False),
            ("podReplacementPolicy", "TerminatingOrFailed"),
            ("manualSelector", None),
        ):
            if value is not None:
                spec.setdefault(key, value)
        if creating and not spec.get("manualSelector"):
            uid, name = obj["metadata"]["uid"], obj["metadata"]["name"]
            job_labels = {
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": name,
                "controller-uid": uid,
                "job-name": name,
            }
            spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
            template_meta = spec.setdefault("template", {}).setdefault("metadata", {})
            template_meta.setdefault("labels", {}).update(job_labels)
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        pod_spec_defaults(template["spec"], template=True)


def pod_spec_defaults(spec: dict, *, template: bool) -> None:
    """Defaults of a PodSpec, as a Pod or as the template of a workload."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    if not template:
        spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        tolerations = spec.setdefault("tolerations", [])
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if not any(t.get("key") == key for t in tolerations):
                tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if isinstance(container, dict):
            _container_defaults(container)
    for volume in spec.get("volumes") or ():
        for kind in _MODE_VOLUMES:
            if isinstance(volume.get(kind), dict):
                volume[kind].setdefault("defaultMode", 420)


def _container_defaults(container: dict) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    image = container.get("image") or ""
    last = image.rsplit("/", 1)[-1]
    untagged = ":" not in last and "@" not in last
    container.setdefault("imagePullPolicy", "Always" if untagged or last.endswith(":latest") else "IfNotPresent")
    resources = container.setdefault("resources", {})
    limits = resources.get("limits") or {}
    if limits:
        requests = resources.setdefault("requests", {})
        for name, value in limits.items():
            requests.setdefault(name, value)
    for port in container.get("ports") or ():
        port.setdefault("protocol", "TCP")
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(probe_name)
        if isinstance(probe, dict):
            for key, value in _PROBE_DEFAULTS.items():
                probe.setdefault(key, value)
            if isinstance(probe.get("httpGet"), dict):
                probe["httpGet"].setdefault("scheme", "HTTP")
    for env in container.get("env") or ():
        field_ref = (env.get("valueFrom") or {}).get("fieldRef")
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")


def _service_defaults(spec: dict) -> None:
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    for port in spec.get("ports") or ():
        port.setdefault("protocol", "TCP")
        if "port" in port:
            port.setdefault("targetPort", port["port"])


def _secret_defaults(obj: dict) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if string_data:
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
