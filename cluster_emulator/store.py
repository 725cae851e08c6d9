"""Object storage: the emulator's etcd.

Holds every object under one lock, stamps the global `resourceVersion`, keeps a
bounded history of changes for watches that resume, and fans each change out to
the watches interested in it through per-watch queues.

Stored objects are never mutated once stored: writers hand over a fresh dict,
readers get the stored dict itself and must copy (`util.clone`) before changing
anything. That lets lists and watch streams serialize outside the lock.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from . import errors
from .resources import STORED, Resource
from .selectors import LabelSelector
from .util import dumps

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
CLOSE = object()  # queued to a watcher to end its stream


@dataclass(eq=False, slots=True)
class Change:
    """One write: the object after it (for DELETED, as it was, at the deletion's resourceVersion)."""

    rv: int
    resource: Resource
    type: str
    obj: dict
    old: dict | None
    _encoded: bytes | None = None

    def encoded(self) -> bytes:
        # Many watches send the same object: encode it once (a benign race if two threads do it).
        if self._encoded is None:
            self._encoded = dumps(self.obj)
        return self._encoded


@dataclass(eq=False)
class Watcher:
    """One open watch: what it selects and the queue its stream reads from."""

    resource: Resource
    namespace: str | None
    labels: LabelSelector
    fields: Callable[[dict], bool] | None
    queue: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    max_backlog: int = 10000
    overflowed: bool = False

    def selects(self, obj: dict | None) -> bool:
        if obj is None:
            return False
        if not self.labels.empty and not self.labels.matches((obj.get("metadata") or {}).get("labels")):
            return False
        return self.fields is None or self.fields(obj)

    def offer(self, change: Change) -> None:
        """Queue a change, turned into what a filtered watch sees (MODIFIED out of the selection is DELETED)."""
        if self.overflowed:
            return
        if change.type == ADDED:
            kind = ADDED if self.selects(change.obj) else None
        elif change.type == DELETED:
            kind = DELETED if self.selects(change.obj) else None
        else:
            now_in, was_in = self.selects(change.obj), self.selects(change.old)
            kind = (MODIFIED if was_in else ADDED) if now_in else (DELETED if was_in else None)
        if kind is None:
            return
        if self.queue.qsize() >= self.max_backlog:
            # Like the real server, drop a watcher that cannot keep up; the client re-lists.
            self.overflowed = True
            self.queue.put(CLOSE)
            return
        self.queue.put((kind, change))

    def close(self) -> None:
        self.queue.put(CLOSE)


class Store:
    """Every stored object, the resourceVersion counter, change history and watch fan-out."""

    def __init__(self, history_limit: int = 20000):
        self._lock = threading.Lock()
        # resource key -> namespace ("" when cluster-scoped) -> name -> object
        self._objects: dict[str, dict[str, dict[str, dict]]] = {r.key: {} for r in STORED}
        self._rv = 0
        self._history: list[Change] = []
        self._history_limit = history_limit
        self._compacted_rv = 0  # history holds every change with rv > this
        self._watchers: dict[tuple[str, str | None], set[Watcher]] = {}
        self._listeners: list[Callable[[Change], None]] = []
        self._by_uid: dict[str, tuple[Resource, str, str]] = {}
        self._dependents: dict[str, set[tuple[Resource, str, str]]] = {}

    # -- reads ---------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def get(self, resource: Resource, namespace: str, name: str) -> dict | None:
        with self._lock:
            return self._objects[resource.key].get(namespace, {}).get(name)

    def by_uid(self, uid: str) -> dict | None:
        with self._lock:
            where = self._by_uid.get(uid)
            if where is None:
                return None
            resource, namespace, name = where
            return self._objects[resource.key].get(namespace, {}).get(name)

    def list(
        self, resource: Resource, namespace: str | None = None, predicate: Callable[[dict], bool] | None = None
    ) -> tuple[list[dict], int]:
        """Objects of a kind (in one namespace, or all), with the resourceVersion the list is consistent at."""
        with self._lock:
            buckets = self._objects[resource.key]
            if namespace is not None:
                pool: Iterable[dict] = buckets.get(namespace, {}).values()
            else:
                pool = (obj for bucket in buckets.values() for obj in bucket.values())
            items = [obj for obj in pool if predicate is None or predicate(obj)]
            return items, self._rv

    def namespace_is_empty(self, namespace: str) -> bool:
        with self._lock:
            return not any(buckets.get(namespace) for buckets in self._objects.values())

    def namespace_contents(self, namespace: str) -> list[tuple[Resource, dict]]:
        with self._lock:
            return [
                (r, obj) for r in STORED if r.namespaced for obj in self._objects[r.key].get(namespace, {}).values()
            ]

    def dependents(self, uid: str) -> list[dict]:
        """Objects with an ownerReference to `uid`."""
        with self._lock:
            out = []
            for resource, namespace, name in self._dependents.get(uid, ()):
                obj = self._objects[resource.key].get(namespace, {}).get(name)
                if obj is not None:
                    out.append(obj)
            return out

    def resource_of_uid(self, uid: str) -> Resource | None:
        with self._lock:
            where = self._by_uid.get(uid)
            return where[0] if where else None

    def snapshot(self) -> dict[str, list[dict]]:
        """All stored objects, by resource key."""
        with self._lock:
            return {
                key: [obj for bucket in buckets.values() for obj in bucket.values()]
                for key, buckets in self._objects.items()
            }

    # -- writes --------------------------------------------------------------------------------

    def create(self, resource: Resource, obj: dict) -> dict:
        """Store a new object (metadata already filled in); 409 AlreadyExists when the name is taken."""
        meta = obj["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        with self._lock:
            bucket = self._objects[resource.key].setdefault(namespace, {})
            if name in bucket:
                raise errors.already_exists(resource, name)
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            bucket[name] = obj
            self._index(resource, None, obj)
            self._record(Change(self._rv, resource, ADDED, obj, None))
            return obj

    def update(self, resource: Resource, obj: dict, expected_rv: str | None) -> dict:
        """Replace a stored object; 409 Conflict when `expected_rv` is stale, 404 when it is gone."""
        meta = obj["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        with self._lock:
            bucket = self._objects[resource.key].get(namespace, {})
            old = bucket.get(name)
            if old is None:
                raise errors.not_found(resource, name)
            if expected_rv is not None and old["metadata"]["resourceVersion"] != expected_rv:
                raise errors.conflict(resource, name)
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            bucket[name] = obj
            self._index(resource, old, obj)
            self._record(Change(self._rv, resource, MODIFIED, obj, old))
            return obj

    def delete(self, resource: Resource, namespace: str, name: str, expected_rv: str | None = None) -> dict:
        """Remove an object for good; the DELETED event carries it at a new resourceVersion."""
        with self._lock:
            bucket = self._objects[resource.key].get(namespace, {})
            old = bucket.get(name)
            if old is None:
                raise errors.not_found(resource, name)
            if expected_rv is not None and old["metadata"]["resourceVersion"] != expected_rv:
                raise errors.conflict(resource, name)
            del bucket[name]
            if not bucket:
                del self._objects[resource.key][namespace]
            self._rv += 1
            final = dict(old)
            final["metadata"] = dict(old["metadata"], resourceVersion=str(self._rv))
            self._index(resource, old, None)
            self._record(Change(self._rv, resource, DELETED, final, old))
            return final

    def _index(self, resource: Resource, old: dict | None, new: dict | None) -> None:
        old_meta = old["metadata"] if old else {}
        new_meta = new["metadata"] if new else {}
        where = (resource, (new_meta or old_meta).get("namespace", ""), (new_meta or old_meta)["name"])
        if new is None:
            self._by_uid.pop(old_meta["uid"], None)
        else:
            self._by_uid[new_meta["uid"]] = where
        old_owners = {ref["uid"] for ref in old_meta.get("ownerReferences") or ()}
        new_owners = {ref["uid"] for ref in new_meta.get("ownerReferences") or ()}
        for uid in old_owners - new_owners:
            deps = self._dependents.get(uid)
            if deps is not None:
                deps.discard(where)
                if not deps:
                    del self._dependents[uid]
        for uid in new_owners - old_owners:
            self._dependents.setdefault(uid, set()).add(where)

    def _record(self, change: Change) -> None:
        """Append to history and hand the change to watchers and listeners (lock held)."""
        self._history.append(change)
        if len(self._history) > 2 * self._history_limit:
            drop = len(self._history) - self._history_limit
            self._compacted_rv = self._history[drop - 1].rv
            del self._history[:drop]
        namespace = change.obj["metadata"].get("namespace", "")
        for key in ((change.resource.key, namespace), (change.resource.key, None)):
            for watcher in self._watchers.get(key, ()):
                watcher.offer(change)
        for listener in self._listeners:
            listener(change)

    # -- watches -------------------------------------------------------------------------------

    def watch(
        self,
        resource: Resource,
        namespace: str | None,
        labels: LabelSelector,
        fields: Callable[[dict], bool] | None,
        since: int | None,
        initial_bookmark: bool = False,
    ) -> Watcher:
        """Open a watch. `since=None`: current objects as ADDED events first, then changes.
        `since=N`: every change after N from history; 410 Expired when N is older than history."""
        watcher = Watcher(resource, namespace, labels, fields)
        with self._lock:
            if since is None:
                bucket = self._objects[resource.key]
                pools = [bucket.get(namespace, {})] if namespace is not None else list(bucket.values())
                for pool in pools:
                    for obj in pool.values():
                        if watcher.selects(obj):
                            watcher.queue.put(
                                (ADDED, Change(int(obj["metadata"]["resourceVersion"]), resource, ADDED, obj, None))
                            )
                if initial_bookmark:
                    watcher.queue.put(("BOOKMARK-INITIAL", self._rv))
            else:
                if since < self._compacted_rv:
                    raise errors.expired(f"too old resource version: {since} ({self._compacted_rv + 1})")
                first = self._history[0].rv if self._history else self._rv + 1
                for change in self._history[max(0, since + 1 - first) :]:
                    if change.resource is resource and (
                        namespace is None or change.obj["metadata"].get("namespace", "") == namespace
                    ):
                        watcher.offer(change)
            self._watchers.setdefault((resource.key, namespace), set()).add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        with self._lock:
            key = (watcher.resource.key, watcher.namespace)
            group = self._watchers.get(key)
            if group is not None:
                group.discard(watcher)
                if not group:
                    del self._watchers[key]

    def bookmark(self, watcher: Watcher) -> None:
        """Queue a BOOKMARK at the current resourceVersion behind everything already queued."""
        with self._lock:
            watcher.queue.put(("BOOKMARK", self._rv))

    def close_watchers(self) -> None:
        with self._lock:
            for group in self._watchers.values():
                for watcher in group:
                    watcher.close()

    def watcher_count(self) -> int:
        with self._lock:
            return sum(len(g) for g in self._watchers.values())

    def compact(self) -> None:
        """Forget history: watches resuming from before now get 410 Expired."""
        with self._lock:
            self._history.clear()
            self._compacted_rv = self._rv

    def add_listener(self, listener: Callable[[Change], None]) -> None:
        """Call `listener(change)` on every write, under the store lock: it must only queue work."""
        with self._lock:
            self._listeners.append(listener)
