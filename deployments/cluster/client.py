"""The one module that owns the `kubernetes` client.

Everything else speaks plain dicts through `Cluster`: apply (server-side
apply, one field manager), get, list, delete, watch and pod metrics. Errors
become `deployments.cluster.errors` types that say whether a retry can help.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import urllib3
from django.conf import settings
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from deployments.cluster import errors
from deployments.cluster.resources import RESOURCES, Resource
from diploi_site.process import process_name

logger = logging.getLogger(__name__)

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MERGE_PATCH_CONTENT_TYPE = "application/merge-patch+json"


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: dict


def _configuration_from_settings() -> tuple[k8s.Configuration, str]:
    """The client configuration and a description of where it came from.

    Order: KUBE_API_URL (an API URL without credentials, e.g. the emulator),
    KUBECONFIG or ~/.kube/config, then the in-cluster service account.
    """
    configuration = k8s.Configuration()
    if settings.KUBE_API_URL:
        configuration.host = settings.KUBE_API_URL.rstrip("/")
        source = f"API at {configuration.host}"
    else:
        kubeconfig = settings.KUBECONFIG or os.path.expanduser(k8s_config.KUBE_CONFIG_DEFAULT_LOCATION)
        if kubeconfig and Path(kubeconfig).is_file():
            k8s_config.load_kube_config(
                config_file=kubeconfig,
                context=settings.KUBE_CONTEXT or None,
                client_configuration=configuration,
            )
            source = f"kubeconfig {kubeconfig}" + (
                f" (context {settings.KUBE_CONTEXT})" if settings.KUBE_CONTEXT else ""
            )
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            k8s_config.load_incluster_config(client_configuration=configuration)
            source = "in-cluster service account"
        else:
            raise errors.ClusterNotConfigured(
                "No Kubernetes cluster is configured: set KUBECONFIG (or create ~/.kube/config), run Diploi "
                "inside a cluster, or set KUBE_API_URL."
            )
    # One quick retry for a dropped keep-alive connection; our callers do the real retrying, and
    # honour Retry-After themselves (urllib3 would sleep on it, then report a 429 as unreachable).
    configuration.retries = urllib3.Retry(
        total=1, connect=1, read=0, redirect=0, status=0, respect_retry_after_header=False
    )
    return configuration, source


def cluster_configured() -> bool:
    try:
        _configuration_from_settings()
    except errors.ClusterNotConfigured:
        return False
    return True


class Cluster:
    """A connection to one Kubernetes API server. Thread-safe; share one per process."""

    def __init__(self, configuration: k8s.Configuration, *, source: str = "", timeout: float | None = None):
        self.api = k8s.ApiClient(configuration)
        # API servers record the user agent in their audit logs: say which of our processes asks.
        self.api.user_agent = f"diploi-{process_name()}"
        self.source = source or configuration.host
        self.field_manager = settings.CLUSTER_FIELD_MANAGER
        self.timeout = timeout or settings.CLUSTER_REQUEST_TIMEOUT
        self._streams: dict = {}  # open watch response -> the stop event its caller gave
        self._streams_lock = threading.Lock()
        self._throttled_until = 0.0  # time.monotonic() before which the server asked us not to come back

    @classmethod
    def from_settings(cls) -> Cluster:
        configuration, source = _configuration_from_settings()
        return cls(configuration, source=source)

    def close(self) -> None:
        self.interrupt_watches()
        self.api.close()

    def interrupt_watches(self, stop: threading.Event | None = None) -> None:
        """End open watches now (from any thread): those opened with ``stop``, or every one.

        Their readers see the stream end: a watch whose ``stop`` is set ends quietly.
        """
        with self._streams_lock:
            streams = [raw for raw, event in self._streams.items() if stop is None or event is stop]
        for raw in streams:
            try:
                raw.shutdown()
            except Exception:  # noqa: BLE001 - already closed is fine
                logger.debug("closing a watch stream failed", exc_info=True)

    # --- raw requests ------------------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] | None = None,
    ):
        self._wait_as_asked()
        params = [(key, value) for key, value in (query or {}).items() if value is not None]
        method, url, headers, body, post_params = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=params,
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(
                method,
                url,
                header_params=headers,
                body=body,
                post_params=post_params,
                _request_timeout=timeout or self.timeout,
            )
        except ApiException as error:
            raise self._refused(_translate(error, method, path)) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise errors.ClusterUnavailable(
                f"The Kubernetes API ({self.source}) cannot be reached: {_short(error)}"
            ) from error
        if not 200 <= response.status < 300:
            response.read()  # ApiException takes the body (the server's Status) from the read data
            raise self._refused(_translate(ApiException(http_resp=response), method, path))
        return response

    def _refused(self, error: errors.ClusterError) -> errors.ClusterError:
        """Remember a Retry-After: the whole process (every task and watch thread) waits as asked."""
        if error.retry_after:
            until = time.monotonic() + min(error.retry_after, MAX_RETRY_AFTER_SECONDS)
            with self._streams_lock:
                self._throttled_until = max(self._throttled_until, until)
        return error

    def _wait_as_asked(self) -> None:
        """Refuse to send while the server's Retry-After runs: a request then would only be refused again."""
        with self._streams_lock:
            left = self._throttled_until - time.monotonic()
        if left > 0:
            raise errors.ClusterUnavailable(
                f"The Kubernetes API asked Diploi to wait: trying again in {math.ceil(left)} s",
                status=429,
                reason="TooManyRequests",
                retry_after=left,
            )

    def request(self, method: str, path: str, **kwargs) -> dict | None:
        response = self._send(method, path, **kwargs)
        data = response.read()
        return json.loads(data) if data else None

    # --- objects ---------------------------------------------------------------------------
    def get(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        """The object, or None when it does not exist."""
        try:
            return self.request("GET", RESOURCES[kind].path(namespace, name))
        except errors.NotFound:
            return None

    def list(
        self,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict], str]:
        """(items, the list's resourceVersion). Items get their ``kind`` and ``apiVersion`` filled in."""
        resource = RESOURCES[kind]
        query = {"labelSelector": label_selector, "fieldSelector": field_selector}
        data = self.request("GET", resource.path(namespace), query=query)
        items = data.get("items") or []
        for item in items:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", resource.api_version)
        return items, data.get("metadata", {}).get("resourceVersion", "")

    def apply(self, obj: dict, *, force: bool = True) -> dict:
        """Server-side apply one object with our field manager; creates or updates. Idempotent."""
        return self.apply_reporting(obj, force=force)[0]

    def apply_reporting(self, obj: dict, *, force: bool = True) -> tuple[dict, bool]:
        """`apply`, and whether it created the object (201) rather than updated it."""
        resource = RESOURCES[obj["kind"]]
        meta = obj["metadata"]
        response = self._send(
            "PATCH",
            resource.path(meta.get("namespace"), meta["name"]),
            # Strict: an unknown or duplicate field is an error, never silently dropped.
            query={"fieldManager": self.field_manager, "force": "true" if force else None, "fieldValidation": "Strict"},
            body=obj,
            content_type=APPLY_CONTENT_TYPE,
        )
        return json.loads(response.read()), response.status == 201

    def merge_patch(self, kind: str, name: str, patch: dict, namespace: str | None = None) -> dict:
        return self.request(
            "PATCH", RESOURCES[kind].path(namespace, name), body=patch, content_type=MERGE_PATCH_CONTENT_TYPE
        )

    def delete(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
        uid: str | None = None,
    ) -> bool:
        """Delete; False when it was already gone. Options go in the body (the server ignores query ones then).
        ``uid``: only that very object (409 `Conflict` when the name now holds another one)."""
        options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if uid:
            options["preconditions"] = {"uid": uid}
        try:
            self.request("DELETE", RESOURCES[kind].path(namespace, name), body=options)
        except errors.NotFound:
            return False
        return True

    def pod_metrics(self, *, namespace: str | None = None, label_selector: str | None = None) -> list[dict] | None:
        """PodMetrics items from metrics.k8s.io, or None when the cluster has no metrics API."""
        try:
            items, _ = self.list("PodMetrics", namespace=namespace, label_selector=label_selector)
        except errors.NotFound:
            return None
        return items

    def watch(
        self,
        kind: str,
        *,
        resource_version: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
        stop: threading.Event | None = None,
        on_connected=None,
    ) -> Iterator[WatchEvent]:
        """Events after ``resource_version`` until the server ends the watch (or ``stop`` is set).

        Raises `WatchExpired` when the server answers 410 Gone: the caller lists
        again and watches from the new resourceVersion. ``on_connected`` is
        called once the server accepted the watch.
        """
        resource = RESOURCES[kind]
        response = self._send(
            "GET",
            resource.path(namespace),
            query={
                "watch": "true",
                "resourceVersion": resource_version,
                "labelSelector": label_selector,
                "fieldSelector": field_selector,
                "timeoutSeconds": timeout_seconds,
                "allowWatchBookmarks": "true",
            },
            timeout=(self.timeout, timeout_seconds + 30),
        )
        raw = response.response
        if on_connected is not None:
            on_connected()
        with self._streams_lock:
            self._streams[raw] = stop
        try:
            for line in iter_resp_lines(raw):
                if stop is not None and stop.is_set():
                    return
                if not line:
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if obj.get("code") == 410:
                        raise errors.WatchExpired(obj.get("message", "watch expired"), status=410, reason="Expired")
                    raise errors.ClusterUnavailable(f"watch of {kind} failed: {obj.get('message', obj)}")
                obj.setdefault("kind", kind)
                obj.setdefault("apiVersion", resource.api_version)
                yield WatchEvent(event["type"], obj)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            if stop is not None and stop.is_set():
                return
            raise errors.ClusterUnavailable(f"The watch of {kind} was cut: {_short(error)}") from error
        finally:
            with self._streams_lock:
                self._streams.pop(raw, None)
            raw.release_conn()

    def pod_log(
        self,
        name: str,
        namespace: str,
        *,
        container: str,
        follow: bool = False,
        since_time: str | None = None,
        tail_lines: int | None = None,
        previous: bool = False,
        idle_timeout: float = 120,
        stop: threading.Event | None = None,
    ) -> Iterator[str]:
        """A container's log lines, each prefixed with its RFC 3339 timestamp (``timestamps=true``).

        With ``follow`` the lines come as the container writes them, until it ends; a stream that
        stays silent for ``idle_timeout`` seconds raises `ClusterUnavailable` (the caller resumes
        with ``since_time``). Raises `NotFound` for a missing pod, `Invalid` (400) while the
        container has not started. ``previous``: the container's run before its last restart.
        ``stop``: `interrupt_watches(stop)` ends the stream from another thread (quietly).
        """
        path = RESOURCES["Pod"].path(namespace, name) + "/log"
        response = self._send(
            "GET",
            path,
            query={
                "container": container,
                "follow": "true" if follow else None,
                "timestamps": "true",
                "sinceTime": since_time,
                "tailLines": tail_lines,
                "previous": "true" if previous else None,
            },
            timeout=(self.timeout, idle_timeout),
        )
        raw = response.response
        if stop is not None:
            with self._streams_lock:
                self._streams[raw] = stop
        try:
            if stop is not None and stop.is_set():
                return
            yield from iter_resp_lines(raw)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            if stop is not None and stop.is_set():
                return
            raise errors.ClusterUnavailable(f"The log of {namespace}/{name} was cut: {_short(error)}") from error
        finally:
            if stop is not None:
                with self._streams_lock:
                    self._streams.pop(raw, None)
            raw.release_conn()

    def service_proxy_get(
        self, namespace: str, service: str, port: int, path: str, *, timeout: float, max_bytes: int
    ) -> ProxyResponse:
        """GET ``path`` of a Service's port through the API server's service proxy
        (`/api/v1/namespaces/{ns}/services/{name}:{port}/proxy/{path}`). Read-only, so safe to repeat.

        Whatever answers (the app, or the API server refusing: a missing Service is 404, a Service
        without ready endpoints 503) comes back as a `ProxyResponse`, never as an error: the status is
        the app's, and an app's 429 or Retry-After must not make this process's other requests wait.
        At most ``max_bytes`` of the body are read (``truncated`` says there was more); no answer
        within ``timeout`` seconds (per read) is ``timed_out``. Raises `ClusterUnavailable` when
        the API server cannot be reached.
        """
        self._wait_as_asked()
        path, _, query = path.partition("?")
        resource_path = f"{RESOURCES['Service'].path(namespace, f'{service}:{port}')}/proxy/{path.lstrip('/')}"
        method, url, headers, body, post_params = self.api.param_serialize(
            method="GET",
            resource_path=resource_path,
            query_params=parse_qsl(query, keep_blank_values=True),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(method, url, header_params=headers, _request_timeout=(timeout, timeout))
            raw = response.response
            try:
                data = raw.read(max_bytes + 1, decode_content=True) or b""
            except BaseException:
                raw.close()
                raise
            if len(data) <= max_bytes:
                raw.release_conn()  # read to its end: the connection goes back to the pool
            else:
                raw.close()  # cut short: this connection is not reused
        except ApiException as error:
            # The REST layer raises for some statuses before the body is read: keep what it carries.
            carried = error.body or b""
            carried = carried.encode() if isinstance(carried, str) else carried
            return ProxyResponse(error.status or 0, "", carried[:max_bytes], len(carried) > max_bytes)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            reason = error.reason if isinstance(error, urllib3.exceptions.MaxRetryError) else error
            if isinstance(reason, urllib3.exceptions.ReadTimeoutError):
                # Connected, asked, and nothing came back in time: the app (behind the proxy) is too slow.
                return ProxyResponse(0, "", b"", False, timed_out=True)
            raise errors.ClusterUnavailable(
                f"The Kubernetes API ({self.source}) cannot be reached: {_short(error)}"
            ) from error
        return ProxyResponse(
            response.status, raw.headers.get("Content-Type", ""), data[:max_bytes], len(data) > max_bytes
        )

    def version(self) -> dict:
        return self.request("GET", "/version")


@dataclass(frozen=True)
class ProxyResponse:
    """What came back through the service proxy: the status code, its content type, at most the bytes asked for."""

    status: int
    content_type: str
    body: bytes
    truncated: bool
    timed_out: bool = False  # no answer within the timeout (status 0)


def resource(kind: str) -> Resource:
    return RESOURCES[kind]


def _short(error: BaseException) -> str:
    text = str(error)
    return text if len(text) < 200 else text[:200] + "…"


SCHEMA_REJECTIONS = ("failed to create typed patch object", "field not declared in schema", "strict decoding error")


def _is_schema_rejection(message: str) -> bool:
    return any(marker in message for marker in SCHEMA_REJECTIONS)


def _translate(error: ApiException, method: str, path: str) -> errors.ClusterError:
    """An API error as our own type, carrying the server's message."""
    status = error.status or 0
    message, reason, causes = "", error.reason or "", ()
    try:
        body = json.loads(error.body) if error.body else {}
        message = body.get("message", "")
        reason = body.get("reason", reason)
        causes = tuple(c for c in (body.get("details") or {}).get("causes") or () if isinstance(c, dict))
    except (TypeError, ValueError, AttributeError):
        message = str(error.body or "")[:300]
    text = message or f"{method} {path} failed with {status} {reason}".strip()
    if status == 404:
        return errors.NotFound(text, status=status, reason=reason)
    if status == 409:
        return errors.Conflict(text, status=status, reason=reason)
    if status in (400, 422) or (status == 500 and _is_schema_rejection(message)):
        # The server refused what we sent (including a 500 from building the typed patch: a field
        # its schema does not declare). Sending it again cannot help: permanent, with its message.
        return errors.Invalid(text, status=status, reason=reason, causes=causes)
    if status == 403 and "being terminated" in message:
        return errors.NamespaceTerminating(text, status=status, reason=reason)
    if status == 403 and "serviceaccount" in message and "not found" in message:
        # A brand-new namespace's default ServiceAccount is created asynchronously.
        return errors.ClusterUnavailable(text, status=status, reason=reason)
    if status in (401, 403):
        return errors.ClusterUnauthorized(
            f"The cluster refused Diploi's credentials: {text}", status=status, reason=reason
        )
    if status == 410:
        return errors.WatchExpired(text, status=status, reason=reason)
    retry_after = _retry_after(error)
    if status == 429:
        wait = f", retry after {math.ceil(retry_after)} s" if retry_after else ""
        return errors.ClusterUnavailable(
            f"The Kubernetes API is throttling Diploi's requests (429{wait}): {text}",
            status=status,
            reason=reason,
            retry_after=retry_after,
        )
    if status >= 500 or status == 0:
        return errors.ClusterUnavailable(
            f"The Kubernetes API is unavailable ({status}): {text}",
            status=status,
            reason=reason,
            retry_after=retry_after,
        )
    return errors.ClusterError(text, status=status, reason=reason)


MAX_RETRY_AFTER_SECONDS = 300


def _retry_after(error: ApiException) -> float | None:
    """The seconds a 429/503 asks us to wait: its Retry-After header (or the Status's retryAfterSeconds)."""
    value = (error.headers or {}).get("Retry-After", "")
    if value.strip().isdigit():
        return float(value)
    try:
        seconds = (json.loads(error.body) or {}).get("details", {}).get("retryAfterSeconds")
    except (TypeError, ValueError, AttributeError):
        return None
    return float(seconds) if isinstance(seconds, int | float) and seconds > 0 else None
