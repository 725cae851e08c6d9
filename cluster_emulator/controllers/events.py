"""Core v1 Events, recorded the way kubelet and the controllers do: repeated events are
aggregated (`count`, `lastTimestamp`), and old events expire after a TTL."""

from __future__ import annotations

import time
from collections import deque

from ..errors import ApiError
from ..resources import EVENTS
from ..util import now
from .base import NODE_NAME, Context


class EventRecorder:
    """Records Events; only the controller thread uses it, so it needs no lock."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._names: dict[tuple, str] = {}
        self._created: deque[tuple[float, str, str]] = deque()

    def record(
        self,
        obj: dict,
        type_: str,
        reason: str,
        message: str,
        *,
        component: str = "kubelet",
        field_path: str | None = None,
    ) -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        key = (namespace, meta["uid"], reason, message)
        stamp = now()
        name = self._names.get(key)
        if name is not None:

            def bump(event: dict) -> None:
                event["count"] = event.get("count", 1) + 1
                event["lastTimestamp"] = stamp

            if self.ctx.registry.mutate(EVENTS, namespace, name, bump) is not None:
                return
        involved = {
            "kind": obj["kind"],
            "namespace": meta.get("namespace"),
            "name": meta["name"],
            "uid": meta["uid"],
            "apiVersion": obj["apiVersion"],
            "resourceVersion": meta.get("resourceVersion"),
        }
        if not involved["namespace"]:
            del involved["namespace"]
        if field_path:
            involved["fieldPath"] = field_path
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": {"component": component, **({"host": NODE_NAME} if component == "kubelet" else {})},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": type_,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": NODE_NAME if component == "kubelet" else "",
        }
        try:
            created = self.ctx.registry.create(EVENTS, namespace, event, manager=component, internal=True)
        except ApiError:
            return  # namespace gone or terminating: real components drop the event too
        self._names[key] = created["metadata"]["name"]
        self._created.append((self.ctx.clock(), namespace, created["metadata"]["name"]))

    def purge(self) -> None:
        """Delete events older than the TTL."""
        horizon = self.ctx.clock() - self.ctx.timing.event_ttl
        while self._created and self._created[0][0] < horizon:
            _, namespace, name = self._created.popleft()
            try:
                self.ctx.store.delete(EVENTS, namespace, name)
            except ApiError:
                pass
        if len(self._names) > 4 * max(len(self._created), 1000):
            self._names.clear()
