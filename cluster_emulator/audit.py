"""An audit log of requests, as the authorizer of a real API server sees them.

A real server resolves each request into attributes (verb, API group, resource,
subresource, namespace, name, or a non-resource path) and asks RBAC whether the
user may. Recording the same attributes lets a test check that a ClusterRole
grants everything a client really does, and nothing more. Off unless enabled.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import unquote

from . import resources

_STREAMING_SUBRESOURCES = {"exec", "attach", "portforward"}


@dataclass(frozen=True)
class RequestAttributes:
    """What RBAC is asked about one request (see Kubernetes' RequestInfo)."""

    user_agent: str
    verbs: tuple[str, ...]  # usually one; a websocket exec needs two (see `attributes_of`)
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # set for non-resource requests (/version, discovery)

    @property
    def is_resource_request(self) -> bool:
        return bool(self.resource)

    @property
    def rbac_resource(self) -> str:
        """How a ClusterRole rule names it: ``pods``, ``pods/exec``."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def attributes_of(method: str, path: str, query: dict[str, str], user_agent: str = "") -> RequestAttributes:
    """Resolve a request as the API server's RequestInfoFactory does (for the paths the emulator serves)."""
    parts = [unquote(part) for part in path.strip("/").split("/") if part]
    if len(parts) < 2 or parts[0] not in ("api", "apis") or (parts[0] == "apis" and len(parts) < 3):
        return RequestAttributes(user_agent, (_non_resource_verb(method),), path=path)
    if parts[0] == "api":
        group, rest = "", parts[2:]
    else:
        group, rest = parts[1], parts[3:]
    watch = query.get("watch") in ("true", "1")
    if rest[:1] == ["watch"]:
        rest, watch = rest[1:], True
    if not rest:
        return RequestAttributes(user_agent, (_non_resource_verb(method),), path=path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3 and _namespaced(group, rest[2]):
        namespace, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) >= 2:
        # /api/v1/namespaces/{name}: the namespace itself is the object.
        namespace = rest[1]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    verb = _verb(method, named=bool(name), watch=watch)
    verbs: tuple[str, ...] = (verb,)
    if subresource in _STREAMING_SUBRESOURCES:
        # SPDY clients POST (create); websocket clients GET, which servers since
        # v1.31 authorize as both get and create (AuthorizePodWebsocketUpgradeCreatePermission).
        verbs = ("create",) if method == "POST" else ("get", "create")
    return RequestAttributes(user_agent, verbs, group, resource, subresource, namespace, name)


def _namespaced(group: str, plural: str) -> bool:
    for res in resources.RESOURCES:
        if res.group == group and res.plural == plural:
            return res.namespaced
    return False


def _verb(method: str, *, named: bool, watch: bool) -> str:
    if method in ("GET", "HEAD"):
        if watch:
            return "watch"
        return "get" if named else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return method.lower()


def _non_resource_verb(method: str) -> str:
    return {"GET": "get", "HEAD": "head", "POST": "post", "PUT": "put", "PATCH": "patch", "DELETE": "delete"}.get(
        method, method.lower()
    )


class AuditLog:
    """Request attributes, recorded while enabled. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._records: list[RequestAttributes] | None = None

    def enable(self) -> None:
        with self._lock:
            self._records = []

    def disable(self) -> None:
        with self._lock:
            self._records = None

    def record(self, method: str, path: str, query: dict[str, str], user_agent: str) -> None:
        with self._lock:
            if self._records is not None:
                self._records.append(attributes_of(method, path, query, user_agent))

    def records(self) -> list[RequestAttributes]:
        with self._lock:
            return list(self._records or [])

    def clear(self) -> None:
        with self._lock:
            if self._records is not None:
                self._records.clear()
