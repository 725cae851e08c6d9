"""The simulated controllers, run by one background thread.

Like real controllers they are level-triggered: a write to the store queues the
keys of the objects it concerns (the object itself, its controller owner, ...),
and the thread reconciles each queued key against the current state. Time-based
transitions (a container starting after a delay) are timers that re-queue a key
when due. The thread sleeps on a condition variable until the next key or timer:
no polling, and an idle cluster costs nothing.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

from ..faults import Faults
from ..registry import Registry
from ..resources import (
    CERTIFICATES,
    DEPLOYMENTS,
    ENDPOINTSLICES,
    EVENTS,
    INGRESSES,
    JOBS,
    NAMESPACES,
    PODS,
    PVCS,
    REPLICASETS,
    SECRETS,
    SERVICEACCOUNTS,
    SERVICES,
    STATEFULSETS,
)
from ..store import DELETED, MODIFIED, Change, Store
from ..timing import Timing
from ..util import controller_of
from .base import Context, Key
from .endpoints import EndpointSliceController
from .events import EventRecorder
from .jobs import JobController
from .namespaces import GarbageCollector, NamespaceController, ensure_namespace_defaults
from .networking import CertificateController, IngressController, ServiceController
from .pods import PodController
from .storage import ClaimController
from .workloads import DeploymentController, ReplicaSetController, StatefulSetController

log = logging.getLogger(__name__)

_OWNERS = {
    "ReplicaSet": REPLICASETS,
    "Deployment": DEPLOYMENTS,
    "StatefulSet": STATEFULSETS,
    "Job": JOBS,
    "Ingress": INGRESSES,
}
_GC, _PV_RELEASE, _EVENTS_TTL = "gc", "pv-release", "events-ttl"
# Pods, Services and the slices themselves all change what a namespace's EndpointSlices hold.
_ENDPOINTS = "endpoints"
_ENDPOINT_INPUTS = {PODS.key, SERVICES.key, ENDPOINTSLICES.key}

__all__ = ["ControllerManager", "ensure_namespace_defaults"]


class ControllerManager:
    """Owns the controllers, their work queue and timers, and the thread running them."""

    def __init__(self, store: Store, registry: Registry, timing: Timing, faults: Faults):
        self._cond = threading.Condition()
        self._queue: dict[Key, None] = {}  # insertion-ordered set of keys to reconcile
        self._timers: list[tuple[float, int, Key]] = []
        self._due: dict[Key, float] = {}
        self._seq = itertools.count()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.store = store
        self.ctx = Context(store, registry, timing, faults, self.enqueue, self.enqueue_after)
        self.ctx.events = EventRecorder(self.ctx)
        self.pods = PodController(self.ctx)
        self.claims = ClaimController(self.ctx)
        self._reconcilers: dict[str, Callable[[str, str], float | None]] = {
            NAMESPACES.key: NamespaceController(self.ctx).reconcile,
            PODS.key: self.pods.reconcile,
            REPLICASETS.key: ReplicaSetController(self.ctx).reconcile,
            DEPLOYMENTS.key: DeploymentController(self.ctx).reconcile,
            STATEFULSETS.key: StatefulSetController(self.ctx).reconcile,
            JOBS.key: JobController(self.ctx).reconcile,
            PVCS.key: self._claim,
            INGRESSES.key: IngressController(self.ctx).reconcile,
            CERTIFICATES.key: CertificateController(self.ctx).reconcile,
            SERVICES.key: ServiceController(self.ctx).reconcile,
            _ENDPOINTS: EndpointSliceController(self.ctx).reconcile,
            _GC: GarbageCollector(self.ctx).reconcile,
            _PV_RELEASE: lambda _ns, name: self.claims.volume_released(name),
            _EVENTS_TTL: self._purge_events,
        }
        store.add_listener(self._on_change)

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cluster-emulator-controllers", daemon=True)
        self._thread.start()
        self.enqueue_after((_EVENTS_TTL, "", ""), min(self.ctx.timing.event_ttl, 60.0))

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    # -- queueing -------------------------------------------------------------------------------------

    def enqueue(self, key: Key) -> None:
        with self._cond:
            self._queue[key] = None
            self._cond.notify()

    def enqueue_after(self, key: Key, delay: float) -> None:
        due = time.monotonic() + max(delay, 0.0)
        with self._cond:
            if self._due.get(key, float("inf")) <= due:
                return  # an earlier timer for this key is already set
            self._due[key] = due
            heapq.heappush(self._timers, (due, next(self._seq), key))
            self._cond.notify()

    def pods_changed(self, namespace: str | None) -> None:
        """Re-check the pods of a namespace (all when None), e.g. after a crash fault changed."""
        pods, _ = self.store.list(PODS, namespace)
        with self._cond:
            for pod in pods:
                self._queue[(PODS.key, pod["metadata"]["namespace"], pod["metadata"]["name"])] = None
            self._cond.notify()

    def _on_change(self, change: Change) -> None:
        """Store listener (called under the store lock): queue the keys this change concerns."""
        resource = change.resource
        if resource is EVENTS:
            return
        meta = change.obj["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        keys: list[Key] = []
        if resource.key in self._reconcilers:
            keys.append((resource.key, namespace, name))
        ref = controller_of(change.obj)
        if ref is not None and ref.get("kind") in _OWNERS:
            keys.append((_OWNERS[ref["kind"]].key, namespace, ref["name"]))
        if change.type == DELETED:
            keys.append((_GC, "", meta["uid"]))
        elif (
            change.type == MODIFIED
            and meta.get("deletionTimestamp")
            and {"foregroundDeletion", "orphan"} & set(meta.get("finalizers") or ())
        ):
            keys.append((_GC, "", meta["uid"]))
        if resource is PODS and (change.type == DELETED or meta.get("deletionTimestamp")):
            for volume in (change.obj.get("spec") or {}).get("volumes") or ():
                claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
                if claim:
                    keys.append((PVCS.key, namespace, claim))
        if resource is PVCS and change.type == DELETED and (change.obj.get("spec") or {}).get("volumeName"):
            keys.append((_PV_RELEASE, "", change.obj["spec"]["volumeName"]))
        if resource is SERVICEACCOUNTS and change.type == DELETED and name == "default":
            keys.append((NAMESPACES.key, "", namespace))
        if resource is SECRETS and change.type == DELETED:
            keys.append((CERTIFICATES.key, namespace, name))
        if namespace and change.type == DELETED:
            keys.append((NAMESPACES.key, "", namespace))
        if namespace and resource.key in _ENDPOINT_INPUTS:
            keys.append((_ENDPOINTS, namespace, ""))
        with self._cond:
            for key in keys:
                self._queue[key] = None
            self._cond.notify()

    # -- the loop --------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    now = time.monotonic()
                    while self._timers and self._timers[0][0] <= now:
                        due, _, key = heapq.heappop(self._timers)
                        if self._due.get(key) == due:
                            del self._due[key]
                            self._queue[key] = None
                    if self._queue:
                        break
                    self._cond.wait(self._timers[0][0] - now if self._timers else None)
                if self._stopped:
                    return
                batch = list(self._queue)
                self._queue.clear()
            for key in batch:
                self._reconcile(key)

    def _reconcile(self, key: Key) -> None:
        kind, namespace, name = key
        reconcile = self._reconcilers.get(kind)
        if reconcile is None:
            return
        try:
            delay = reconcile(namespace, name)
        except Exception:  # a bug in one controller must not stop the others
            log.exception("cluster emulator: reconciling %s failed", key)
            delay = self.ctx.timing.controller_retry
        if delay is not None:
            self.enqueue_after(key, delay)

    def _claim(self, namespace: str, name: str) -> float | None:
        self.pods.claim_changed(namespace, name)
        return self.claims.reconcile(namespace, name)

    def _purge_events(self, _namespace: str, _name: str) -> float:
        self.ctx.events.purge()
        return min(self.ctx.timing.event_ttl, 60.0)
