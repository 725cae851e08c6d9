"""Request handling: turns an HTTP request into store/registry calls and a response.

Knows the Kubernetes REST conventions (paths, verbs, query parameters, content
types, list and Status bodies, watch parameters) but nothing about sockets:
`server.py` feeds it parsed requests and writes what it returns.
"""

from __future__ import annotations

import base64
import json
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import unquote

import yaml

from . import errors, metrics, resources
from .errors import ApiError
from .logs import PodLogs
from .proxy import PROXY_PATH, ServiceProxy
from .registry import Registry
from .resources import (
    CERTIFICATES,
    NAMESPACES,
    NODE_METRICS,
    POD_METRICS,
    PODS,
    SERVICES,
    Resource,
)
from .schema import KUBERNETES_VERSION
from .selectors import parse_field_selector, parse_label_selector
from .store import Store, Watcher

log = logging.getLogger(__name__)

# Kinds whose DELETE answers with the deleted object rather than a Status (as real servers do).
_RETURNS_DELETED_OBJECT = {PODS.key, SERVICES.key, NAMESPACES.key, CERTIFICATES.key}
_PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/json-patch+json": "json",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+json": "apply",
}
_JOB_DELETE_WARNING = (
    '299 - "child pods are preserved by default when jobs are deleted; set '
    "propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this "
    'warning"'
)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""


@dataclass
class WatchStream:
    """What the server streams for a watch request."""

    resource: Resource
    watcher: Watcher | None
    timeout: float
    bookmarks: bool
    error: dict | None = None  # an ERROR event sent instead (410 Expired)


@dataclass
class Response:
    code: int
    body: dict | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    watch: WatchStream | None = None
    stream: Callable[[Callable[[], bool]], Iterator[bytes]] | None = None  # chunks; given "has the client gone?"


@dataclass
class Route:
    resource: Resource | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    watch_path: bool = False
    document: dict | None = None  # discovery answers


class Api:
    """The REST API of the emulated cluster."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        *,
        server_address: str = "127.0.0.1:0",
        version_info: dict | None = None,
        logs: PodLogs | None = None,
        proxy: ServiceProxy | None = None,
    ):
        self.store = store
        self.proxy = proxy  # the service proxy (`services/{name}:{port}/proxy/...`), when there is one
        self.registry = registry
        self.logs = logs or PodLogs()
        self.server_address = server_address
        self.version_info = version_info or version_document()

    def handle(self, req: Request) -> Response:
        try:
            return self._handle(req)
        except ApiError as exc:
            return Response(exc.code, exc.status(), dict(exc.headers))
        except Exception as exc:  # a bug in the emulator: answer like a server would, and say so in the log
            log.exception("cluster emulator: %s %s failed", req.method, req.path)
            error = ApiError(500, f"Internal error occurred: {type(exc).__name__}: {exc}")
            return Response(500, error.status())

    # -- routing --------------------------------------------------------------------------------------

    def _handle(self, req: Request) -> Response:
        path = req.path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz") or path.startswith(("/healthz/", "/livez/", "/readyz/")):
            return Response(200, b"ok", content_type="text/plain; charset=utf-8")
        if path == "/version":
            return Response(200, self.version_info)
        proxied = PROXY_PATH.match(req.path)
        if proxied and self.proxy is not None:
            code, body, content_type = self.proxy.handle(
                req.method, unquote(proxied["namespace"]), unquote(proxied["service"]), unquote(proxied["path"] or "/")
            )
            return Response(code, body, content_type=content_type)
        route = self._route(path)
        if route.document is not None:
            if req.method != "GET":
                raise errors.method_not_allowed()
            return Response(200, route.document)
        res = route.resource
        assert res is not None
        if res.read_only:
            return self._metrics(req, route)
        if route.watch_path:
            req.query["watch"] = "true"
        if route.name is None:
            return self._collection(req, route)
        if route.subresource is None:
            return self._object(req, route)
        return self._subresource(req, route)

    def _route(self, path: str) -> Route:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts == ["api"]:
            return Route(document=resources.api_versions_doc(self.server_address))
        if parts == ["apis"]:
            return Route(document=resources.api_group_list_doc())
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 2:
            versions = resources.group_versions().get(parts[1])
            if versions is None or not parts[1]:
                raise errors.path_not_found()
            if len(parts) == 2:
                return Route(document=resources.api_group(parts[1], versions))
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise errors.path_not_found()
        if not rest:
            doc = resources.resource_list_doc(group, version)
            if doc is None:
                raise errors.path_not_found()
            return Route(document=doc)
        watch_path = rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        if len(rest) >= 3 and rest[0] == "namespaces":
            res = resources.by_path(group, version, rest[2])
            if res is not None and res.namespaced:
                return _route_rest(res, rest[1], rest[3:], watch_path)
        if rest:
            res = resources.by_path(group, version, rest[0])
            if res is not None:
                if res.namespaced and len(rest) > 1:
                    raise errors.path_not_found()
                return _route_rest(res, None, rest[1:], watch_path)
        raise errors.path_not_found()

    # -- collections ----------------------------------------------------------------------------------

    def _collection(self, req: Request, route: Route) -> Response:
        res, namespace = route.resource, route.namespace
        if req.method == "GET":
            if req.query.get("watch") in ("true", "1"):
                return self._watch(req, route)
            return self._list(req, route)
        if req.method == "POST":
            if res.namespaced and namespace is None:
                raise errors.method_not_allowed()
            body = _json_body(req)
            dry_run = _dry_run(req)
            obj = self.registry.create(res, namespace or "", body, manager=_manager(req), dry_run=dry_run)
            return Response(201, obj)
        if req.method == "DELETE":
            return self._delete_collection(req, route)
        raise errors.method_not_allowed()

    def _selectors(self, req: Request, res: Resource):
        labels = parse_label_selector(req.query.get("labelSelector"))
        fields = parse_field_selector(req.query.get("fieldSelector"), res.key)
        return labels, fields

    def _list(self, req: Request, route: Route) -> Response:
        res = route.resource
        labels, fields = self._selectors(req, res)

        def predicate(obj: dict) -> bool:
            if not labels.empty and not labels.matches(obj["metadata"].get("labels")):
                return False
            return fields is None or fields(obj)

        items, rv = self.store.list(res, route.namespace, None if labels.empty and fields is None else predicate)
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        meta: dict = {"resourceVersion": str(rv)}
        limit = _int_param(req, "limit")
        start = req.query.get("continue")
        if start:
            try:
                token = json.loads(base64.urlsafe_b64decode(start.encode()))
                after = (token["ns"], token["name"])
            except (ValueError, KeyError, TypeError) as exc:
                raise errors.bad_request("continue key is not valid: invalid continue token") from exc
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > after]
        if limit and limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]
            token = {"ns": last.get("namespace", ""), "name": last["name"], "rv": rv}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
            if labels.empty and fields is None:
                meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        if not res.custom:
            # Built-in lists do not repeat kind/apiVersion on each item.
            items = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in items]
        return Response(200, {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta, "items": items})

    def _watch(self, req: Request, route: Route) -> Response:
        res = route.resource
        labels, fields = self._selectors(req, res)
        rv = req.query.get("resourceVersion") or ""
        send_initial = req.query.get("sendInitialEvents") == "true"
        bookmarks = req.query.get("allowWatchBookmarks") in ("true", "1")
        timeout = _int_param(req, "timeoutSeconds")
        if timeout is None:
            timeout = random.uniform(1800, 3600)  # like --min-request-timeout: 30 to 60 minutes
        if rv in ("", "0") or send_initial:
            since = None
        else:
            try:
                since = int(rv)
            except ValueError as exc:
                raise errors.bad_request(f"invalid resource version: {rv}") from exc
        try:
            watcher = self.store.watch(
                res, route.namespace, labels, fields, since, initial_bookmark=send_initial and bookmarks
            )
        except ApiError as exc:
            return Response(200, watch=WatchStream(res, None, timeout, bookmarks, error=exc.status()))
        return Response(200, watch=WatchStream(res, watcher, float(timeout), bookmarks))

    def _delete_collection(self, req: Request, route: Route) -> Response:
        res = route.resource
        labels, fields = self._selectors(req, res)
        options = _delete_options(req)
        options.pop("accepted")
        items, _ = self.store.list(
            res,
            route.namespace,
            lambda o: labels.matches(o["metadata"].get("labels")) and (fields is None or fields(o)),
        )
        deleted = []
        for obj in items:
            try:
                gone, _ = self.registry.delete(
                    res, obj["metadata"].get("namespace", ""), obj["metadata"]["name"], **options
                )
            except ApiError as exc:
                if exc.code == 404:
                    continue
                raise
            deleted.append(gone)
        return Response(
            200,
            {
                "kind": res.list_kind,
                "apiVersion": res.api_version,
                "metadata": {"resourceVersion": str(self.store.resource_version)},
                "items": deleted,
            },
        )

    # -- single objects -------------------------------------------------------------------------------

    def _object(self, req: Request, route: Route) -> Response:
        res, namespace, name = route.resource, route.namespace or "", route.name
        if req.method == "GET":
            obj = self.store.get(res, namespace, name)
            if obj is None:
                raise errors.not_found(res, name)
            return Response(200, obj)
        if req.method == "PUT":
            obj = self.registry.replace(
                res, namespace, name, _json_body(req), manager=_manager(req), dry_run=_dry_run(req)
            )
            return Response(200, obj)
        if req.method == "PATCH":
            return self._patch(req, route)
        if req.method == "DELETE":
            return self._delete(req, route)
        raise errors.method_not_allowed()

    def _patch(self, req: Request, route: Route, subresource: str | None = None) -> Response:
        res, namespace, name = route.resource, route.namespace or "", route.name
        content_type = req.headers.get("content-type", "").split(";")[0].strip().lower()
        patch_type = _PATCH_TYPES.get(content_type)
        if patch_type is None:
            raise errors.unsupported_media_type(content_type, list(_PATCH_TYPES))
        manager = req.query.get("fieldManager")
        if patch_type == "apply":
            if not manager:
                raise ApiError(
                    422,
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
                    "Invalid",
                    {
                        "group": "meta.k8s.io",
                        "kind": "PatchOptions",
                        "causes": [
                            {
                                "reason": "FieldValueRequired",
                                "message": "Required value: is required for apply patch",
                                "field": "fieldManager",
                            }
                        ],
                    },
                )
            config = _apply_body(req.body)
            force = req.query.get("force") in ("true", "1")
            obj, created = self.registry.apply(
                res,
                namespace,
                name,
                config,
                manager=manager,
                force=force,
                subresource=subresource,
                dry_run=_dry_run(req),
            )
            return Response(201 if created else 200, obj)
        if "force" in req.query:
            raise ApiError(
                422,
                'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch',
                "Invalid",
                {
                    "group": "meta.k8s.io",
                    "kind": "PatchOptions",
                    "causes": [
                        {
                            "reason": "FieldValueForbidden",
                            "message": "Forbidden: may not be specified for non-apply patch",
                            "field": "force",
                        }
                    ],
                },
            )
        obj = self.registry.patch(
            res,
            namespace,
            name,
            patch_type,
            _json_body(req),
            manager=manager or _manager(req),
            subresource=subresource,
            dry_run=_dry_run(req),
        )
        return Response(200, obj)

    def _delete(self, req: Request, route: Route) -> Response:
        res, namespace, name = route.resource, route.namespace or "", route.name
        options = _delete_options(req)
        headers = {}
        if res.key == "jobs.batch" and options.get("propagation") is None:
            headers["Warning"] = _JOB_DELETE_WARNING
        accepted = options.pop("accepted")
        obj, gone = self.registry.delete(res, namespace, name, **options)
        if not gone:
            # Like the real server: 200 with the terminating object (202 only for orphanDependents=false).
            return Response(202 if accepted else 200, obj, headers)
        if res.key in _RETURNS_DELETED_OBJECT:
            return Response(200, obj, headers)
        details = {"name": name, "kind": res.plural, "uid": obj["metadata"]["uid"]}
        if res.group:
            details["group"] = res.group
        return Response(
            200,
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details},
            headers,
        )

    # -- subresources ---------------------------------------------------------------------------------

    def _subresource(self, req: Request, route: Route) -> Response:
        res, sub = route.resource, route.subresource
        if sub not in res.subresources:
            raise errors.path_not_found()
        if sub == "status":
            if req.method == "GET":
                return self._object(req, Route(res, route.namespace, route.name))
            if req.method == "PUT":
                obj = self.registry.replace(
                    res,
                    route.namespace or "",
                    route.name,
                    _json_body(req),
                    manager=_manager(req),
                    subresource="status",
                    dry_run=_dry_run(req),
                )
                return Response(200, obj)
            if req.method == "PATCH":
                return self._patch(req, route, subresource="status")
            raise errors.method_not_allowed()
        if sub == "scale":
            return self._scale(req, route)
        if sub == "log":
            return self._log(req, route)
        if sub == "finalize" and req.method == "PUT":
            body = _json_body(req)
            finalizers = (body.get("spec") or {}).get("finalizers") if isinstance(body, dict) else None

            def set_finalizers(obj: dict) -> None:
                if finalizers:
                    obj.setdefault("spec", {})["finalizers"] = finalizers
                else:
                    obj.get("spec", {}).pop("finalizers", None)

            obj = self.registry.mutate(res, "", route.name, set_finalizers)
            if obj is None:
                raise errors.not_found(res, route.name)
            return Response(200, obj)
        raise errors.method_not_allowed()

    def _scale(self, req: Request, route: Route) -> Response:
        res, namespace, name = route.resource, route.namespace or "", route.name
        if req.method in ("PUT", "PATCH"):
            body = _json_body(req)
            if req.method == "PATCH" and isinstance(body, list):
                raise errors.unsupported_media_type("application/json-patch+json", ["application/merge-patch+json"])
            replicas = ((body or {}).get("spec") or {}).get("replicas") if isinstance(body, dict) else None
            if not isinstance(replicas, int) or replicas < 0:
                raise errors.invalid_object(
                    res, name, [errors.invalid("spec.replicas", replicas, "must be greater than or equal to 0")]
                )
            self.registry.patch(
                res,
                namespace,
                name,
                "merge",
                {"spec": {"replicas": replicas}},
                manager=req.query.get("fieldManager") or _manager(req),
                dry_run=_dry_run(req),
            )
        elif req.method != "GET":
            raise errors.method_not_allowed()
        obj = self.store.get(res, namespace, name)
        if obj is None:
            raise errors.not_found(res, name)
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        selector = spec.get("selector") or {}
        text = ",".join(f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items()))
        return Response(
            200,
            {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
                "spec": {"replicas": spec.get("replicas", 1)},
                "status": {"replicas": status.get("replicas", 0), "selector": text},
            },
        )

    def _log(self, req: Request, route: Route) -> Response:
        """`pods/{name}/log`: container, follow, timestamps, tailLines, sinceTime, sinceSeconds, previous,
        answered (and refused: 404, 400) as a real API server does."""
        if req.method != "GET":
            raise errors.method_not_allowed()
        namespace = route.namespace or ""
        pod = self.store.get(PODS, namespace, route.name)
        if pod is None:
            raise errors.not_found(PODS, route.name)
        spec = pod.get("spec") or {}
        containers = [c["name"] for c in spec.get("containers") or ()]
        init = [c["name"] for c in spec.get("initContainers") or ()]
        container = req.query.get("container") or (containers[0] if len(containers) == 1 else None)
        if container is None:
            raise errors.bad_request(
                f"a container name must be specified for pod {route.name}, choose one of: [{' '.join(containers)}]"
                + (f" or one of the init containers: [{' '.join(init)}]" if init else "")
            )
        if container not in containers and container not in init:
            raise errors.bad_request(f"container {container} is not valid for pod {route.name}")
        tail = _int_param(req, "tailLines")
        since_seconds = _int_param(req, "sinceSeconds")
        since_time = req.query.get("sinceTime")
        if tail is not None and tail < 0:
            raise errors.bad_request(f"tailLines: Invalid value: {tail}: must be greater than or equal to 0")
        if since_seconds is not None and since_seconds < 1:
            raise errors.bad_request(f"sinceSeconds: Invalid value: {since_seconds}: must be greater than 0")
        if since_seconds is not None and since_time:
            raise errors.bad_request("at most one of `sinceTime` or `sinceSeconds` may be specified")
        since = _since(since_time, since_seconds)
        statuses = {
            c["name"]: c
            for c in ((pod.get("status") or {}).get("containerStatuses") or [])
            + ((pod.get("status") or {}).get("initContainerStatuses") or [])
        }
        status = statuses.get(container) or {}
        restarts = status.get("restartCount", 0)
        previous = req.query.get("previous") in ("true", "1")
        if previous:
            if not restarts or not self.logs.has(namespace, route.name, container, restarts - 1):
                raise errors.bad_request(f'previous terminated container "{container}" in pod "{route.name}" not found')
            restarts -= 1
        else:
            state = status.get("state") or {}
            if not status.get("containerID") and "waiting" in state:
                reason = state["waiting"].get("reason", "ContainerCreating")
                raise errors.bad_request(f'container "{container}" in pod "{route.name}" is waiting to start: {reason}')
            if not status:
                raise errors.bad_request(
                    f'container "{container}" in pod "{route.name}" is waiting to start: PodInitializing'
                )
        key = (namespace, route.name, container, restarts)
        follow = req.query.get("follow") in ("true", "1") and not previous
        timestamps = req.query.get("timestamps") in ("true", "1")
        if not follow:
            body = b"".join(self.logs.read(key, since=since, tail=tail, timestamps=timestamps))
            return Response(200, body, content_type="text/plain")
        return Response(
            200,
            content_type="text/plain",
            stream=lambda gone: self.logs.read(
                key, since=since, tail=tail, timestamps=timestamps, follow=True, gone=gone
            ),
        )

    # -- metrics ------------------------------------------------------------------------------------------

    def _metrics(self, req: Request, route: Route) -> Response:
        if req.method != "GET" or route.subresource is not None:
            raise errors.method_not_allowed()
        if req.query.get("watch") in ("true", "1"):
            raise errors.method_not_allowed()
        labels = parse_label_selector(req.query.get("labelSelector"))
        if route.resource is POD_METRICS:
            if route.name is None:
                items = metrics.list_pod_metrics(self.store, route.namespace, labels)
                return Response(
                    200,
                    {"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items},
                )
            pod = self.store.get(PODS, route.namespace or "", route.name)
            found = metrics.pod_metrics(pod) if pod is not None else None
            if found is None:
                raise errors.not_found(POD_METRICS, route.name)
            return Response(200, found)
        if route.name is None:
            items = [
                metrics.node_metrics(self.store, n["metadata"]["name"])
                for n in self.store.list(resources.NODES)[0]
                if labels.matches(n["metadata"].get("labels"))
            ]
            return Response(
                200,
                {
                    "kind": "NodeMetricsList",
                    "apiVersion": "metrics.k8s.io/v1beta1",
                    "metadata": {},
                    "items": [i for i in items if i],
                },
            )
        found = metrics.node_metrics(self.store, route.name)
        if found is None:
            raise errors.not_found(NODE_METRICS, route.name)
        return Response(200, found)


def _route_rest(res: Resource, namespace: str | None, rest: list[str], watch_path: bool) -> Route:
    if len(rest) > 2:
        raise errors.path_not_found()
    name = rest[0] if rest else None
    sub = rest[1] if len(rest) > 1 else None
    return Route(res, namespace, name, sub, watch_path)


def _since(since_time: str | None, since_seconds: int | None) -> str | None:
    """The earliest log timestamp asked for, in the form the log store compares (nanoseconds, UTC)."""
    if since_seconds is not None:
        moment = datetime.now(UTC).timestamp() - since_seconds
        return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    if not since_time:
        return None
    try:
        moment = datetime.fromisoformat(since_time.replace("Z", "+00:00"))
    except ValueError:
        raise errors.bad_request(
            f'parsing time "{since_time}" as "2006-01-02T15:04:05Z07:00": cannot parse "{since_time}" as "2006"'
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _json_body(req: Request):
    if not req.body:
        raise errors.bad_request("the request body is empty")
    try:
        return json.loads(req.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"the request body is not valid JSON: {exc}") from exc


def _apply_body(body: bytes):
    """An apply body: JSON (what the Python client sends, parsed fast) or YAML."""
    try:
        return json.loads(body)
    except ValueError:
        pass
    try:
        return yaml.load(body.decode() or "null", Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"error decoding YAML: {exc}") from exc


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _int_param(req: Request, name: str) -> int | None:
    value = req.query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise errors.bad_request(f"invalid value for {name}: {value!r}") from exc


def _dry_run(req: Request) -> bool:
    return req.query.get("dryRun") == "All"


def _manager(req: Request) -> str:
    """The field manager of a non-apply write: `fieldManager`, else the user agent's program name."""
    if req.query.get("fieldManager"):
        return req.query["fieldManager"]
    agent = req.headers.get("user-agent") or "unknown"
    return agent.split("/")[0].split(" ")[0][:128] or "unknown"


def _delete_options(req: Request) -> dict:
    """DeleteOptions from the body when there is one (query parameters are then ignored), else the query."""
    source: dict = {}
    if req.body and req.body.strip():
        try:
            source = json.loads(req.body) or {}
        except ValueError as exc:
            raise errors.bad_request(f"the request body is not valid JSON: {exc}") from exc
        if not isinstance(source, dict):
            raise errors.bad_request("the DeleteOptions body must be an object")
        grace = source.get("gracePeriodSeconds")
        propagation = source.get("propagationPolicy")
        orphan = source.get("orphanDependents")
        dry_run = "All" in (source.get("dryRun") or ())
        preconditions = source.get("preconditions") or None
    else:
        grace = _int_param(req, "gracePeriodSeconds")
        propagation = req.query.get("propagationPolicy") or None
        orphan = req.query.get("orphanDependents")
        orphan = None if orphan is None else orphan in ("true", "1")
        dry_run = _dry_run(req)
        preconditions = None
    if propagation is None and orphan is not None:
        propagation = "Orphan" if orphan else "Background"
    return {
        "grace": grace,
        "propagation": propagation,
        "preconditions": preconditions,
        "dry_run": dry_run,
        "accepted": orphan is False,
    }


def version_document() -> dict:
    major, minor, _ = KUBERNETES_VERSION.split(".")
    return {
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "minCompatibilityMajor": major,
        "minCompatibilityMinor": str(int(minor) - 1),
        "gitVersion": f"v{KUBERNETES_VERSION}+diploi-emulator",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }
