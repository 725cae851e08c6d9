"""`ClusterEmulator`: the store, the API, the controllers and the HTTP server, wired together."""

from __future__ import annotations

import logging
import threading

from .api import Api
from .audit import AuditLog
from .controllers import ControllerManager, ensure_namespace_defaults
from .controllers.base import NODE_IP, NODE_NAME
from .faults import Faults
from .logs import PodLogs
from .podfs import PodFiles
from .proxy import ServiceProxy
from .registry import Registry
from .resources import NAMESPACES, NODES, SERVICES
from .server import HttpServer
from .store import Store
from .streaming import Streams
from .timing import Timing, timing_for
from .util import now

log = logging.getLogger(__name__)

_SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class ClusterEmulator:
    """A small Kubernetes API server with simulated controllers, over real HTTP.

    >>> emu = ClusterEmulator(port=0, speed="fast")
    >>> emu.start()
    >>> emu.url  # point kubernetes.client.Configuration(host=...) at it
    >>> emu.stop()

    `speed` is "realistic" (seconds, for people watching) or "fast" (tenths of a second,
    for tests); any delay of `Timing` can be overridden by keyword (`pod_start_delay=...`).
    `validate_internal=True` also validates the objects the simulated controllers write
    (useful in the emulator's own tests).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: str = "fast",
        *,
        validate_internal: bool = False,
        history_limit: int = 20000,
        files_root: str | None = None,
        allow_remote_exec: bool | None = None,
        clone_timeout: float = 60.0,
        **delays: float,
    ):
        self.host = host
        self.port = port
        self.speed = speed
        self.timing: Timing = timing_for(speed, **delays)
        self.store = Store(history_limit=history_limit)
        self.registry = Registry(self.store, validate_internal=validate_internal)
        self.faults = Faults(self.store, lambda namespace: self.controllers.pods_changed(namespace))
        self.controllers = ControllerManager(self.store, self.registry, self.timing, self.faults)
        self.logs = PodLogs()
        self.controllers.ctx.logs = self.logs
        self.api = Api(
            self.store, self.registry, logs=self.logs, proxy=ServiceProxy(self.store, self.faults, self.timing)
        )
        self.audit = AuditLog()
        # Exec and port-forward: each pod's directory under `files_root` (a temporary one by default).
        self.files = PodFiles(self.store, files_root, clone_timeout=clone_timeout)
        self.streams = Streams(self.store, self.files, host=host, allow_remote_exec=allow_remote_exec)
        self._server: HttpServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False
        self._bootstrap()

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> ClusterEmulator:
        """Start the controllers and serve in background threads; returns once listening."""
        with self._lock:
            if self._started:
                raise RuntimeError("this ClusterEmulator was already started")
            self._started = True
            self.controllers.start()
            self._listen()
        return self

    def stop(self) -> None:
        """Stop serving and the controllers; close open watches and connections. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self.streams.close()
            self._close_server()
            self.controllers.stop()
            self.files.cleanup()

    def take_down(self) -> None:
        """The API goes away: the listener closes (connections refused) and open connections drop.
        State is kept and the simulated cluster keeps running."""
        with self._lock:
            self._close_server()

    def bring_up(self) -> None:
        """Listen again on the same port, with the same state."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("this ClusterEmulator was stopped")
            if self._server is None:
                self._listen()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def snapshot(self) -> dict[str, list[dict]]:
        """Every stored object, by resource (e.g. "pods", "deployments.apps"); for tests."""
        return self.store.snapshot()

    def configuration(self):
        """A `kubernetes.client.Configuration` pointing at this emulator (no auth)."""
        from kubernetes import client

        config = client.Configuration()
        config.host = self.url
        return config

    def __enter__(self) -> ClusterEmulator:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "up" if self.is_up else "down"
        return f"<ClusterEmulator {self.url} speed={self.speed} {state}>"

    # -- internals ----------------------------------------------------------------------------------------

    def _listen(self) -> None:
        server = HttpServer(
            (self.host, self.port), self.api, self.faults, self.store, self.timing, self.audit, self.streams
        )
        self.port = server.server_address[1]
        self.api.server_address = f"{self.host}:{self.port}"
        self._server = server
        self._serve_thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="cluster-emulator-listener", daemon=True
        )
        self._serve_thread.start()
        log.info("cluster emulator listening on %s", self.url)

    def _close_server(self) -> None:
        server, thread = self._server, self._serve_thread
        if server is None:
            return
        self._server = self._serve_thread = None
        server.shutdown()
        server.server_close()
        self.store.close_watchers()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def _bootstrap(self) -> None:
        """What a fresh cluster has: system namespaces with their ServiceAccounts, a node, the API Service."""
        for name in _SYSTEM_NAMESPACES:
            self.registry.create(NAMESPACES, "", {"metadata": {"name": name}}, manager="kube-apiserver", internal=True)
            ensure_namespace_defaults(self.registry, name)
        self.registry.create(NODES, "", _node(), manager="kubelet", internal=True)
        self.registry.create(
            SERVICES,
            "default",
            {
                "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "targetPort": 6443}]},
            },
            manager="kube-apiserver",
            internal=True,
        )


def _node() -> dict:
    stamp = now()
    conditions = [
        {
            "type": kind,
            "status": "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
        for kind, reason, message in (
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        )
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
    )
    capacity = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "metadata": {
            "name": NODE_NAME,
            "labels": {
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/control-plane": "",
                "diploi.io/emulated": "true",
            },
        },
        "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": NODE_IP}, {"type": "Hostname", "address": NODE_NAME}],
            "nodeInfo": {
                "machineID": "emulated",
                "systemUUID": "emulated",
                "bootID": "emulated",
                "kernelVersion": "6.1.0",
                "osImage": "Diploi cluster emulator",
                "containerRuntimeVersion": "containerd://2.0.0",
                "kubeletVersion": "v1.37.0",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }
