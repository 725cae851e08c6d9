"""`services/{name}:{port}/proxy/{path}`: the API server's service proxy, with a stand-in app behind it.

As a real API server: the Service must exist (404 Status otherwise), the port must be one of
its ports, by name or number (503 "no service port"), and a ready pod must back it (503 "no
endpoints available"); then the request goes to one of those pods and the pod's answer comes
back as it is. No real process runs in an emulated pod, so the answer comes from a stand-in:
a path whose last segment contains "status" answers in Diploi's status format
(`diploiStatusVersion: 1`), with an item for the app itself (yellow for the first
`app_status_warmup` seconds after its pod became ready, then green) and one per other (not headless) Service
of the namespace (its connection: green while that Service has a ready pod, yellow while it
waits for one); any other path
answers a short text saying it is a stand-in. `Faults.app_status()` and its siblings make the
app report red or yellow, refuse connections, or answer garbage.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from . import errors
from .faults import Faults
from .resources import PODS, SERVICES
from .selectors import from_dict
from .store import Store
from .timing import Timing

PROXY_PATH = re.compile(r"^/api/v1/namespaces/(?P<namespace>[^/]+)/services/(?P<service>[^/]+)/proxy(?P<path>/.*)?$")


class ServiceProxy:
    def __init__(self, store: Store, faults: Faults, timing: Timing):
        self.store, self.faults, self.timing = store, faults, timing

    def handle(self, method: str, namespace: str, reference: str, path: str) -> tuple[int, bytes, str]:
        """(status code, body, content type) of a proxied request. Raises `ApiError` where the API
        server itself refuses."""
        name, port_ref = _parse_reference(reference)
        service = self.store.get(SERVICES, namespace, name)
        if service is None:
            raise errors.not_found(SERVICES, name)
        ports = (service.get("spec") or {}).get("ports") or []
        port = next((p for p in ports if port_ref in ("", p.get("name"), str(p.get("port")))), None)
        if port is None:
            raise errors.ApiError(503, f'no service port "{port_ref}" found for service "{name}"', "ServiceUnavailable")
        pods = self._ready_pods(namespace, service)
        if not pods:
            raise errors.ApiError(503, f'no endpoints available for service "{name}"', "ServiceUnavailable")
        pod = pods[0]
        rule = self.faults.app_status_rule(namespace, name)
        if rule is not None and rule.mode == "unreachable":
            address = (pod.get("status") or {}).get("podIP", "10.0.0.1")
            raise errors.ApiError(
                503,
                f"error trying to reach service: dial tcp {address}:{port.get('port')}: connect: connection refused",
                "ServiceUnavailable",
            )
        if method != "GET":
            return 405, b"Method Not Allowed\n", "text/plain; charset=utf-8"
        if rule is not None and rule.mode == "garbage":
            return 200, rule.body, "text/html; charset=utf-8"
        if "status" not in path.rstrip("/").rsplit("/", 1)[-1]:
            text = (
                f"Diploi cluster emulator: no real process runs in pod {pod['metadata']['name']}; "
                f"this stands in for port {port.get('port')} of service {name}.\n"
            )
            return 200, text.encode(), "text/plain; charset=utf-8"
        document = {"diploiStatusVersion": 1, "items": self._items(namespace, name, pod, rule)}
        return 200, json.dumps(document).encode(), "application/json"

    def _ready_pods(self, namespace: str, service: dict) -> list[dict]:
        selector_labels = (service.get("spec") or {}).get("selector")
        if not selector_labels:
            return []  # a Service without a selector has only the endpoints someone wrote: none here
        selector = from_dict(selector_labels)
        pods, _ = self.store.list(PODS, namespace, lambda pod: selector.matches(pod["metadata"].get("labels")))
        ready = [pod for pod in pods if _ready_since(pod) is not None and not pod["metadata"].get("deletionTimestamp")]
        return sorted(ready, key=lambda pod: pod["metadata"]["name"])

    def _items(self, namespace: str, name: str, pod: dict, rule) -> list[dict]:
        started = _ready_since(pod)
        warming = started is not None and (datetime.now(UTC) - started).total_seconds() < self.timing.app_status_warmup
        if rule is not None and rule.mode in ("red", "yellow"):
            status, message = rule.mode, rule.message or f"injected fault: {rule.mode}"
        elif warming:
            status, message = "yellow", "Starting (simulated by the cluster emulator)"
        else:
            status, message = "green", "Serving requests (simulated by the cluster emulator)"
        items = [
            {
                "identifier": name,
                "name": name,
                "description": f"The process of {pod['metadata']['name']}",
                "status": status,
                "message": message,
                "isPending": warming,
            }
        ]
        services, _ = self.store.list(SERVICES, namespace)
        for other in sorted(services, key=lambda s: s["metadata"]["name"]):
            other_name = other["metadata"]["name"]
            # A headless Service governs a StatefulSet's pods; apps reach them through the regular one.
            if other_name == name or (other.get("spec") or {}).get("clusterIP") == "None":
                continue
            up = bool(self._ready_pods(namespace, other))
            items.append(
                {
                    "identifier": f"{other_name}-connection",
                    "name": f"Connection to {other_name}",
                    "description": f"{name} reaches {other_name}",
                    # Waiting, not failing: as Diploi's own templates report a dependency still starting.
                    "status": "green" if up else "yellow",
                    "message": "Connected" if up else f"Waiting for {other_name}",
                    "isPending": not up,
                }
            )
        return items


def _parse_reference(reference: str) -> tuple[str, str]:
    """`[scheme:]name[:port]` as the API server reads a proxy's service reference: (name, port or "")."""
    parts = reference.split(":")
    if len(parts) == 3:
        scheme, name, port = parts
        if scheme not in ("http", "https", ""):
            raise errors.bad_request(f"invalid service request {reference!r}")
        return name, port
    if len(parts) == 2:
        if parts[0] in ("http", "https"):
            return parts[1], ""
        return parts[0], parts[1]
    if len(parts) == 1:
        return parts[0], ""
    raise errors.bad_request(f"invalid service request {reference!r}")


def _ready_since(pod: dict) -> datetime | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            stamp = condition.get("lastTransitionTime") or pod["metadata"].get("creationTimestamp")
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else datetime.now(UTC)
    return None
