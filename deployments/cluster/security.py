"""Isolation and pod security of a deployment's namespace, as plain dicts. Pure: no I/O.

- Pod Security Admission labels on the namespace: ``restricted`` when every
  present service's image allows it (``security.level`` in the template),
  else ``baseline``; both warn and audit at ``restricted``.
- A securityContext on every pod and container: the runtime's default seccomp
  profile, no privilege escalation, every capability dropped and only the
  template's added back, the template's user (runAsNonRoot when it is not 0).
- NetworkPolicies: nothing reaches a pod of the namespace but pods of the same
  namespace, and the ingress controller's namespace on public components' ports.
- A ResourceQuota and a LimitRange sized from the deployment's size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from deployments.cluster import labels as L
from deployments.sizes import DeploymentSize
from templates_catalog.spec import Security

PSA = "pod-security.kubernetes.io"
# Room in the quota for one-off pods beside the workloads (a build, an action), each of the deployment's size.
QUOTA_SPARE_PODS = 2
# A Deployment's rolling update runs up to 25% more pods (rounded up) while it replaces them.
SURGE = 0.25

_CPU_MILLI = {"m": 1}


def namespace_labels(levels: Iterable[str]) -> dict[str, str]:
    level = "restricted" if all(level == "restricted" for level in levels) else "baseline"
    return {
        f"{PSA}/enforce": level,
        f"{PSA}/enforce-version": "latest",
        f"{PSA}/warn": "restricted",
        f"{PSA}/warn-version": "latest",
        f"{PSA}/audit": "restricted",
        f"{PSA}/audit-version": "latest",
    }


def pod_security_context(security: Security) -> dict:
    context: dict = {"seccompProfile": {"type": "RuntimeDefault"}}
    if security.run_as_non_root:
        context["runAsNonRoot"] = True
    for key, value in (
        ("runAsUser", security.run_as_user),
        ("runAsGroup", security.run_as_group),
        ("fsGroup", security.fs_group),
    ):
        if value is not None:
            context[key] = value
    if security.fs_group is not None:
        # Volumes get the group once (and again only when their root does not have it).
        context["fsGroupChangePolicy"] = "OnRootMismatch"
    return context


def container_security_context(security: Security, *, capabilities: tuple[str, ...] | None = None) -> dict:
    added = security.added_capabilities() if capabilities is None else capabilities
    drop: dict = {"drop": ["ALL"]}
    if added:
        drop["add"] = list(added)
    context = {"allowPrivilegeEscalation": False, "privileged": False, "capabilities": drop}
    if security.run_as_non_root:
        context["runAsNonRoot"] = True
    return context


def network_policies(
    meta, *, deployment_id: int, public_ports: Mapping[str, int], ingress_namespace: str
) -> list[dict]:
    """The namespace's policies: ``meta(name, labels)`` builds metadata; ``public_ports`` maps public
    components to their container ports."""
    policies = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta("same-namespace-only"),
            "spec": {
                # Every pod of the namespace: isolated for ingress, reachable from its own namespace only.
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
            },
        }
    ]
    for service_id, port in public_ports.items():
        policies.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": meta(f"{service_id}-from-ingress"),
                "spec": {
                    "podSelector": {"matchLabels": L.service_selector(deployment_id, service_id)},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {
                                    "namespaceSelector": {
                                        "matchLabels": {"kubernetes.io/metadata.name": ingress_namespace}
                                    }
                                }
                            ],
                            "ports": [{"protocol": "TCP", "port": port}],
                        }
                    ],
                },
            }
        )
    return policies


def _millicores(value: str) -> int:
    return int(value[:-1]) if value.endswith("m") else int(float(value) * 1000)


_MEMORY_UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}


def _bytes(value: str) -> int:
    for suffix, factor in _MEMORY_UNITS.items():
        if value.endswith(suffix):
            return int(float(value[: -len(suffix)]) * factor)
    return int(value)


def _mebibytes(count: int) -> str:
    return f"{math.ceil(count / 1024**2)}Mi"


def pods_at_most(workloads: Iterable[dict]) -> int:
    """How many pods the workloads may run at once, rolling updates included."""
    total = 0
    for workload in workloads:
        replicas = workload["spec"].get("replicas", 1)
        surge = math.ceil(replicas * SURGE) if workload["kind"] == "Deployment" and replicas else 0
        total += replicas + surge
    return total


def resource_quota(meta, *, size: DeploymentSize, workloads: list[dict], claims: list[dict]) -> dict:
    """What the namespace may use in all: its workloads at full size during a rollout, plus spare pods."""
    pods = pods_at_most(workloads) + QUOTA_SPARE_PODS
    storage = sum(_bytes(c["spec"]["resources"]["requests"]["storage"]) for c in claims)
    hard = {
        "pods": str(pods),
        "requests.cpu": f"{pods * _millicores(size.cpu_request)}m",
        "limits.cpu": f"{pods * _millicores(size.cpu_limit)}m",
        "requests.memory": _mebibytes(pods * _bytes(size.memory_request)),
        "limits.memory": _mebibytes(pods * _bytes(size.memory_limit)),
        "persistentvolumeclaims": str(len(claims) + QUOTA_SPARE_PODS),
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }
    if storage:
        hard["requests.storage"] = _mebibytes(storage)
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": meta("deployment-size"), "spec": {"hard": hard}}


def limit_range(meta, *, size: DeploymentSize) -> dict:
    """Containers without resources get the deployment's size; none may ask for more than it."""
    resources = size.resources()
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": meta("deployment-size"),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": dict(resources["limits"]),
                    "defaultRequest": dict(resources["requests"]),
                    "max": dict(resources["limits"]),
                }
            ]
        },
    }
