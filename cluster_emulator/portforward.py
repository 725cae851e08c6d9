"""`pods/{name}/portforward` over a websocket, as the API server speaks it.

For the i-th port of `?ports=`, channel 2i carries data both ways and 2i+1 carries errors
(server to client). Each channel's first message is the channel byte then the port as
2 bytes little-endian. Every port a container of the pod declares is served by a small
HTTP responder standing in for the process (no real process runs in an emulated pod),
which says so in every answer; a port nobody declares gets the kubelet's "connection
refused" on its error channel. The websocket closes once no forwarded connection is left.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler

from .websocket import Closed, WebSocket

log = logging.getLogger(__name__)

PORTFORWARD_PROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io")
_CHUNK = 32 * 1024


class PortForwardSession:
    container = None  # port-forward goes to the pod, not one container

    def __init__(self, ws: WebSocket, pod: dict, ports: list[int]):
        self.ws, self.pod, self.ports = ws, pod, ports
        self.targets: dict[int, socket.socket] = {}  # port index -> the connection to the pod's port
        self._lock = threading.Lock()
        self._ended = threading.Event()

    def run(self) -> None:
        try:
            for index, port in enumerate(self.ports):
                prefix = struct.pack("<H", port)
                self.ws.send(bytes((2 * index,)) + prefix)
                self.ws.send(bytes((2 * index + 1,)) + prefix)
            for index, port in enumerate(self.ports):
                target = self._connect(port)
                if target is None:
                    self.ws.send(bytes((2 * index + 1,)) + self._refused(port).encode())
                    continue
                with self._lock:
                    self.targets[index] = target
                threading.Thread(
                    target=self._pump, args=(index, target), name="emulator-portforward", daemon=True
                ).start()
            if not self._open():
                self.ws.close()
            self._serve_input()
        except Closed:
            pass
        finally:
            self._ended.set()
            with self._lock:
                targets = list(self.targets.values())
                self.targets.clear()
            for target in targets:
                _close(target)

    def end(self, reason: str) -> None:
        """The pod goes away: its connections drop, then the websocket."""
        with self._lock:
            targets = list(self.targets.values())
        for target in targets:
            try:
                target.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _open(self) -> bool:
        with self._lock:
            return bool(self.targets)

    def _serve_input(self) -> None:
        while True:
            _opcode, message = self.ws.receive()
            if not message:
                continue
            channel, data = message[0], message[1:]
            if channel % 2 or not data:
                continue
            with self._lock:
                target = self.targets.get(channel // 2)
            if target is None:
                continue
            try:
                target.sendall(data)
            except OSError:
                self._drop(channel // 2)

    def _pump(self, index: int, target: socket.socket) -> None:
        try:
            while True:
                data = target.recv(_CHUNK)
                if not data:
                    break
                self.ws.send(bytes((2 * index,)) + data)
        except (OSError, Closed):
            pass
        self._drop(index)

    def _drop(self, index: int) -> None:
        with self._lock:
            target = self.targets.pop(index, None)
            left = bool(self.targets)
        if target is not None:
            _close(target)
        if not left and not self._ended.is_set():
            self.ws.close()

    def _connect(self, port: int) -> socket.socket | None:
        """A connection to what serves `port` in the pod: the stand-in responder, or None (refused)."""
        for container in (self.pod.get("spec") or {}).get("containers") or ():
            for declared in container.get("ports") or ():
                if declared.get("containerPort") == port and declared.get("protocol", "TCP") == "TCP":
                    ours, theirs = socket.socketpair()
                    meta = self.pod["metadata"]
                    label = f"port {port} of pod {meta.get('namespace')}/{meta['name']} (container {container['name']})"
                    threading.Thread(
                        target=_serve_stand_in, args=(theirs, label), name="emulator-stand-in", daemon=True
                    ).start()
                    return ours
        return None

    def _refused(self, port: int) -> str:
        meta = self.pod["metadata"]
        return (
            f"error forwarding port {port} to pod {meta['name']}, uid {meta.get('uid', '')}: failed to connect to "
            f"localhost:{port} inside the pod's network namespace, IPv4: dial tcp4 127.0.0.1:{port}: connect: "
            "connection refused"
        )


class StandIn(BaseHTTPRequestHandler):
    """Answers any HTTP request for a port of an emulated pod, saying plainly what it is."""

    protocol_version = "HTTP/1.1"
    server_version = "diploi-cluster-emulator-stand-in"
    sys_version = ""
    label = ""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        body = (
            f"Diploi cluster emulator: this answers for {self.label}.\n"
            "No real process runs in an emulated pod; this small responder stands in for it.\n"
            f"Request: {self.command} {self.path}\n"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Diploi-Emulated", "stand-in")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer  # noqa: N815

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's signature
        log.debug("emulator stand-in: " + format, *args)


def _serve_stand_in(sock: socket.socket, label: str) -> None:
    handler = type("BoundStandIn", (StandIn,), {"label": label})
    try:
        handler(sock, ("pod", 0), None)
    except (OSError, ValueError):
        pass
    finally:
        _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
