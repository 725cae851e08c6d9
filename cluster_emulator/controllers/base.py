"""What every simulated controller shares: the cluster handles and a few constants."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..faults import Faults
from ..registry import Registry
from ..resources import Resource
from ..store import Store
from ..timing import Timing

NODE_NAME = "emulator-node"
NODE_IP = "172.18.0.2"
INGRESS_IP = "203.0.113.10"  # TEST-NET-3: never routable, obviously fake
LOAD_BALANCER_IP = "203.0.113.20"

Key = tuple[str, str, str]  # (resource key or task name, namespace, name)


@dataclass
class Context:
    """Handles a controller needs; `enqueue`/`enqueue_after` schedule reconciles."""

    store: Store
    registry: Registry
    timing: Timing
    faults: Faults
    enqueue: Callable[[Key], None]
    enqueue_after: Callable[[Key, float], None]
    events: object = None  # EventRecorder, set once built
    logs: object = None  # PodLogs: what containers print, served by pods/{name}/log
    clock: Callable[[], float] = time.monotonic
    first_seen: dict[str, float] = field(default_factory=dict)

    def seen(self, uid: str) -> float:
        """When a controller first saw the object with this uid (monotonic seconds)."""
        return self.first_seen.setdefault(uid, self.clock())

    def forget(self, uid: str) -> None:
        self.first_seen.pop(uid, None)


def key_of(resource: Resource, obj: dict) -> Key:
    meta = obj["metadata"]
    return resource.key, meta.get("namespace", ""), meta["name"]


def owned(store: Store, owner: dict, kind: str) -> list[dict]:
    """Objects of `kind` whose controller ownerReference points at `owner`."""
    uid = owner["metadata"]["uid"]
    out = []
    for dep in store.dependents(uid):
        if dep.get("kind") != kind:
            continue
        for ref in dep["metadata"].get("ownerReferences") or ():
            if ref.get("uid") == uid and ref.get("controller"):
                out.append(dep)
                break
    return out


def deleting(obj: dict) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def pod_ready(pod: dict) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def pod_running_ready(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and pod_ready(pod) and not deleting(pod)
