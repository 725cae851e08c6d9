"""The EndpointSlice controller, simulated: which ready pods stand behind each Service.

As kube-controller-manager's `endpointslice-controller.k8s.io` does, for every
Service with a selector (not ExternalName) it keeps one `discovery.k8s.io/v1`
EndpointSlice named `<service>-<random>`, owned by the Service, labelled with the
Service's own labels plus `kubernetes.io/service-name` and
`endpointslice.kubernetes.io/managed-by`, listing every pod the selector matches
that has an IP and has not finished: its address, `conditions` (`ready`,
`serving`, `terminating`), node and `targetRef`. Ports are the Service's, with a
named `targetPort` resolved against the pod's container ports (a pod without
that port is left out, as the real controller leaves it out). Slices it manages
that no longer belong (the Service lost its selector) are deleted; a slice
deleted or changed by someone else is put back. One slice per Service: the real
controller splits at 100 endpoints, which no emulated workload reaches.
"""

from __future__ import annotations

from ..errors import ApiError
from ..resources import ENDPOINTSLICES, PODS, SERVICES
from ..selectors import from_dict
from ..util import clone, now, owner_reference
from .base import Context, deleting, pod_ready

SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "endpointslice-controller.k8s.io"
HEADLESS = "service.kubernetes.io/headless"
TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"


class EndpointSliceController:
    """Reconciles every Service of a namespace at once (key: the namespace): pods, Services and slices
    all change what a namespace's slices should hold."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def reconcile(self, namespace: str, _name: str = "") -> float | None:
        services, _ = self.ctx.store.list(SERVICES, namespace)
        pods, _ = self.ctx.store.list(PODS, namespace)
        slices, _ = self.ctx.store.list(ENDPOINTSLICES, namespace)
        ours: dict[str, list[dict]] = {}
        for item in slices:
            labels = item["metadata"].get("labels") or {}
            if labels.get(MANAGED_BY) == CONTROLLER:
                ours.setdefault(labels.get(SERVICE_NAME, ""), []).append(item)
        for service in services:
            name = service["metadata"]["name"]
            existing = ours.pop(name, [])
            spec = service.get("spec") or {}
            if deleting(service) or not spec.get("selector") or spec.get("type") == "ExternalName":
                ours[name] = existing  # none wanted: deleted below
                continue
            self._sync(service, pods, existing)
        for stale in ours.values():
            for item in stale:
                self._delete(namespace, item["metadata"]["name"])
        return None

    def _sync(self, service: dict, pods: list[dict], existing: list[dict]) -> None:
        namespace, name = service["metadata"]["namespace"], service["metadata"]["name"]
        endpoints, ports = _endpoints(service, pods)
        labels = {
            **{
                k: v
                for k, v in (service["metadata"].get("labels") or {}).items()
                if k not in (SERVICE_NAME, MANAGED_BY)
            },
            SERVICE_NAME: name,
            MANAGED_BY: CONTROLLER,
        }
        if (service.get("spec") or {}).get("clusterIP") == "None":
            labels[HEADLESS] = ""
        keep, *extra = sorted(existing, key=lambda s: s["metadata"]["name"]) or [None]
        for item in extra:
            self._delete(namespace, item["metadata"]["name"])
        if keep is None:
            body = {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "generateName": f"{name}-",
                    "namespace": namespace,
                    "labels": labels,
                    "annotations": {TRIGGER_TIME: now()},
                    "ownerReferences": [owner_reference(service)],
                },
                "addressType": "IPv4",
                "endpoints": endpoints,
                "ports": ports,
            }
            try:
                self.ctx.registry.create(ENDPOINTSLICES, namespace, body, manager=CONTROLLER, internal=True)
            except ApiError:  # the namespace is going away: nothing to keep
                pass
            return

        def update(obj: dict) -> None:
            if (obj["metadata"].get("labels"), obj.get("endpoints"), obj.get("ports")) == (labels, endpoints, ports):
                return
            obj["metadata"]["labels"] = clone(labels)
            obj["metadata"].setdefault("annotations", {})[TRIGGER_TIME] = now()
            obj["endpoints"], obj["ports"] = clone(endpoints), clone(ports)

        self.ctx.registry.mutate(ENDPOINTSLICES, namespace, keep["metadata"]["name"], update)

    def _delete(self, namespace: str, name: str) -> None:
        try:
            self.ctx.registry.delete(ENDPOINTSLICES, namespace, name)
        except ApiError:
            pass


def _container_port(pod: dict, target) -> int | None:
    """The pod's port a Service's targetPort names (a number stands for itself)."""
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or ():
        for port in container.get("ports") or ():
            if port.get("name") == target:
                return port.get("containerPort")
    return None


def _endpoints(service: dict, pods: list[dict]) -> tuple[list[dict], list[dict]]:
    """(endpoints, ports) of a Service's slice: its selected pods with an IP that have not finished."""
    spec = service.get("spec") or {}
    selector = from_dict(spec.get("selector"))
    service_ports = spec.get("ports") or []
    endpoints, resolved = [], None
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        status = pod.get("status") or {}
        if not selector.matches(pod["metadata"].get("labels")) or not status.get("podIP"):
            continue
        if status.get("phase") in ("Succeeded", "Failed"):
            continue
        numbers = [_container_port(pod, p.get("targetPort", p.get("port"))) for p in service_ports]
        if any(number is None for number in numbers):
            continue  # the pod does not have the port the Service targets
        resolved = resolved or numbers
        terminating = deleting(pod)
        serving = pod_ready(pod) or bool(spec.get("publishNotReadyAddresses"))
        endpoint = {
            "addresses": [status["podIP"]],
            "conditions": {"ready": serving and not terminating, "serving": serving, "terminating": terminating},
            "targetRef": {
                "kind": "Pod",
                "namespace": pod["metadata"]["namespace"],
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
            },
        }
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            endpoint["nodeName"] = node
        endpoints.append(endpoint)
    # A slice with no endpoint has no ports either (kubectl shows "<unset>"), as the real placeholder.
    ports = [
        {"name": port.get("name", ""), "port": number, "protocol": port.get("protocol", "TCP")}
        for port, number in zip(service_ports, resolved or (), strict=False)
    ]
    return endpoints, ports
