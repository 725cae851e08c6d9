"""The streaming subresources of pods: `exec` and `portforward`, over websockets.

`Streams.handle` is called by the HTTP server for `GET|POST .../pods/{name}/exec|portforward`.
It checks the request as the API server does (the pod exists, the container is valid,
the pod is running; the parameters), answers errors as Status objects, then upgrades
the connection and runs the session on the request's thread.

Exec runs commands on this machine as the emulator's user: when the emulator listens
beyond loopback it refuses exec unless `allow_remote_exec` (or the environment variable
`CLUSTER_EMULATOR_ALLOW_REMOTE_EXEC=1`) says otherwise.

A pod that is deleted, or whose container restarts, ends the exec sessions into it with a
Status saying so (a store listener notices; it only signals the sessions).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl

from . import errors
from .errors import ApiError
from .execution import V4, V5, ExecSession
from .podfs import PodFiles
from .portforward import PORTFORWARD_PROTOCOLS, PortForwardSession
from .resources import PODS
from .store import DELETED, Change, Store
from .websocket import accept_key, is_upgrade, offered_protocols

log = logging.getLogger(__name__)

_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/(exec|portforward)/?$")
_EXEC_PROTOCOLS = (V5, V4)
ALLOW_REMOTE_EXEC_ENV = "CLUSTER_EMULATOR_ALLOW_REMOTE_EXEC"


def is_stream_path(path: str) -> bool:
    return _PATH.match(path) is not None


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Streams:
    """Exec and port-forward sessions of one emulator."""

    def __init__(self, store: Store, files: PodFiles, *, host: str, allow_remote_exec: bool | None = None):
        self.store, self.files = store, files
        if allow_remote_exec is None:
            allow_remote_exec = os.environ.get(ALLOW_REMOTE_EXEC_ENV, "") in ("1", "true", "yes")
        self.exec_allowed = is_loopback(host) or allow_remote_exec
        self.host = host
        self._lock = threading.Lock()
        # (namespace, pod) -> {a session's slot: (the pod's uid, its running containers) when the session began}
        self._sessions: dict[tuple[str, str], dict] = {}
        store.add_listener(self._pod_changed)

    # -- the request -----------------------------------------------------------------------------------

    def handle(self, handler, method: str, path: str, raw_query: str, headers: dict[str, str]) -> None:
        """Answer one exec/portforward request on `handler` (a BaseHTTPRequestHandler)."""
        match = _PATH.match(path)
        assert match is not None
        namespace, name, kind = match.groups()
        query = parse_qsl(raw_query, keep_blank_values=True)
        try:
            if not is_upgrade(headers):
                # SPDY (POST with Upgrade: SPDY/3.1) or a plain request: this emulator speaks websockets only.
                raise errors.bad_request(
                    "Upgrade request required (the cluster emulator serves exec and port-forward over "
                    "websockets only: v5.channel.k8s.io or v4.channel.k8s.io)"
                )
            pod = self.store.get(PODS, namespace, name)
            if pod is None:
                raise errors.not_found(PODS, name)
            if kind == "exec":
                self._exec(handler, pod, dict_of(query), [v for k, v in query if k == "command"], headers)
            else:
                self._portforward(handler, pod, query, headers)
        except ApiError as exc:
            handler.send_api_error(exc)
        except (OSError, ValueError) as exc:  # e.g. preparing the pod's directory failed: say so, like a server
            log.exception("cluster emulator: %s of pod %s/%s failed", kind, namespace, name)
            if not handler.upgraded:
                handler.send_api_error(ApiError(500, f"Internal error occurred: {type(exc).__name__}: {exc}"))

    def _exec(self, handler, pod: dict, query: dict[str, str], command: list[str], headers: dict[str, str]) -> None:
        name = pod["metadata"]["name"]
        container = _container_of(pod, query.get("container", ""))
        _check_running(pod, container)
        flags = {key: query.get(key, "") in ("true", "1") for key in ("stdin", "stdout", "stderr", "tty")}
        if not (flags["stdin"] or flags["stdout"] or flags["stderr"]):
            raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
        if not command:
            raise errors.bad_request("you must specify at least one command for the container")
        if not self.exec_allowed:
            raise ApiError(
                403,
                f'pods "{name}" is forbidden: exec is disabled: this emulator listens on {self.host}, beyond '
                "loopback, and exec runs commands on its machine as its user; start it with --allow-remote-exec "
                f"(or {ALLOW_REMOTE_EXEC_ENV}=1) to allow that",
                details={"name": name, "kind": "pods"},
            )
        protocol = _negotiate(headers, _EXEC_PROTOCOLS)
        view = self.files.view(pod, container)
        with self._registered(pod, container) as slot:
            ws = handler.upgrade(accept_key(headers.get("sec-websocket-key", "")), protocol)
            session = ExecSession(
                ws,
                protocol,
                view,
                command,
                stdin=flags["stdin"],
                stdout=flags["stdout"],
                stderr=flags["stderr"],
                tty=flags["tty"],
                pod=name,
                container=container,
            )
            slot.attach(session)
            session.run()

    def _portforward(self, handler, pod: dict, query: list[tuple[str, str]], headers: dict[str, str]) -> None:
        ports: list[int] = []
        for key, value in query:
            if key != "ports":
                continue
            for part in filter(None, (p.strip() for p in value.split(","))):
                try:
                    port = int(part)
                except ValueError as exc:
                    raise errors.bad_request(f'unable to parse "{part}" as a port: invalid syntax') from exc
                if not 0 < port < 65536:
                    raise errors.bad_request(f"port {port} must be > 0 and < 65536")
                ports.append(port)
        if not ports:
            raise errors.bad_request("at least one port must be specified")
        _check_running(pod, None)
        protocol = _negotiate(headers, PORTFORWARD_PROTOCOLS, allow_none=True)
        with self._registered(pod, None) as slot:
            ws = handler.upgrade(accept_key(headers.get("sec-websocket-key", "")), protocol)
            session = PortForwardSession(ws, pod, ports)
            slot.attach(session)
            session.run()

    @contextmanager
    def _registered(self, pod: dict, container: str | None) -> Iterator[_Slot]:
        """A place among the pod's sessions, for the session about to start, until it ends.

        Taken before the handshake: what the client does to the pod once it sees the stream open
        (a delete, say) reaches the session, however late the session's thread runs. What changed
        since `pod` was read is checked once the place is taken.
        """
        meta = pod["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        slot = _Slot(container)
        uid, runs = meta.get("uid", ""), _container_runs(pod)
        with self._lock:
            self._sessions.setdefault(key, {})[slot] = (uid, runs)
        try:
            current = self.store.get(PODS, *key)
            reason = _why_ended(key, current or pod, current is None, uid, runs, container)
            if reason is not None:
                slot.end(reason)
            yield slot
        finally:
            with self._lock:
                group = self._sessions.get(key)
                if group is not None:
                    group.pop(slot, None)
                    if not group:
                        del self._sessions[key]

    def close(self) -> None:
        """The emulator stops: end every session."""
        with self._lock:
            sessions = [s for group in self._sessions.values() for s in group]
        for session in sessions:
            session.end("the cluster emulator is stopping")

    # -- pods going away ------------------------------------------------------------------------------

    def _pod_changed(self, change: Change) -> None:
        """Store listener (under the store lock): end sessions of a pod that goes, or whose container restarts."""
        if change.resource is not PODS or not self._sessions:
            return
        meta = change.obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        with self._lock:
            sessions = list(self._sessions.get(key, {}).items())
        if not sessions:
            return
        for slot, (uid, runs) in sessions:
            reason = _why_ended(key, change.obj, change.type == DELETED, uid, runs, slot.container)
            if reason is not None:
                slot.end(reason)


class _Slot:
    """A session's place among its pod's sessions; what ends it before it starts is kept for it."""

    def __init__(self, container: str | None):
        self.container = container
        self._session = None
        self._reason: str | None = None
        self._lock = threading.Lock()

    def end(self, reason: str) -> None:
        with self._lock:
            if self._reason is None:
                self._reason = reason
            session = self._session
        if session is not None:
            session.end(reason)

    def attach(self, session) -> None:
        with self._lock:
            self._session = session
            reason = self._reason
        if reason is not None:
            session.end(reason)


def _why_ended(
    key: tuple[str, str], pod: dict, deleted: bool, uid: str, runs: dict, container: str | None
) -> str | None:
    """Why a session begun on the pod `uid` (its containers running as `runs`) ends, seeing `pod`; None: it goes on."""
    ns, name = key
    meta = pod["metadata"]
    if deleted or meta.get("uid") != uid:
        return f'pod "{ns}/{name}" was deleted'
    if meta.get("deletionTimestamp"):
        return f'pod "{ns}/{name}" is being deleted: its containers were stopped'
    if container is not None:
        before = runs.get(container)
        if before is not None and _container_runs(pod).get(container) != before:
            return f'container "{container}" of pod "{ns}/{name}" stopped (it restarted or exited)'
    return None


def dict_of(query: list[tuple[str, str]]) -> dict[str, str]:
    return {key: value for key, value in query}


def _negotiate(headers: dict[str, str], supported: tuple[str, ...], *, allow_none: bool = False) -> str:
    offered = offered_protocols(headers)
    for protocol in offered:  # the client's order, as the API server's handshake picks
        if protocol in supported:
            return protocol
    if allow_none and not offered:
        return ""
    raise errors.bad_request(
        f"none of the websocket subprotocols offered ({', '.join(offered) or 'none'}) is supported: "
        f"use {' or '.join(supported)}"
    )


def _container_of(pod: dict, requested: str) -> str:
    """The container an exec names, checked as the API server does."""
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    containers = [c["name"] for c in spec.get("containers") or ()]
    init = [c["name"] for c in spec.get("initContainers") or ()]
    if not requested:
        if len(containers) == 1:
            return containers[0]
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        if init:
            message += f" or one of the init containers: [{' '.join(init)}]"
        raise errors.bad_request(message)
    if requested not in containers and requested not in init:
        raise errors.bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def _check_running(pod: dict, container: str | None) -> None:
    name = pod["metadata"]["name"]
    if not (pod.get("spec") or {}).get("nodeName"):
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    status = pod.get("status") or {}
    phase = status.get("phase", "Pending")
    if phase in ("Succeeded", "Failed"):
        raise errors.bad_request(
            f"cannot exec into or port-forward to a container in a completed pod; current phase is {phase}"
        )
    if container is None:
        if phase != "Running":
            raise errors.bad_request(f"pod {name} is not running (phase {phase})")
        return
    statuses = {
        c["name"]: c for c in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])
    }
    state = (statuses.get(container) or {}).get("state") or {}
    if "running" not in state:
        why = (state.get("waiting") or {}).get("reason") or ("terminated" if "terminated" in state else "not started")
        raise errors.bad_request(f'container "{container}" in pod "{name}" is not running: {why}')


def _container_runs(pod: dict) -> dict[str, tuple[int, str]]:
    """Per container: (restartCount, containerID) while it runs; a change means it stopped."""
    status = pod.get("status") or {}
    out = {}
    for c in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        if "running" in (c.get("state") or {}):
            out[c["name"]] = (c.get("restartCount", 0), c.get("containerID", ""))
    return out
