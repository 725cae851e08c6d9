"""HTTP transport: a threaded HTTP/1.1 server speaking to the Kubernetes client.

One thread per connection (keep-alive), JSON bodies with Content-Length, and watch
streams as chunked newline-delimited JSON events, one chunk per batch of events, as
`kubernetes.watch.Watch.stream` reads them. Tracks its connections so that stopping
(or `take_down`) closes them all: clients then see their connections refused or reset.
"""

from __future__ import annotations

import logging
import queue
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from . import errors
from .api import Api, Request, Response, WatchStream
from .audit import AuditLog
from .faults import Faults
from .store import CLOSE, Store
from .streaming import Streams, is_stream_path
from .timing import Timing
from .util import dumps
from .websocket import WebSocket

log = logging.getLogger(__name__)

_MAX_BATCH = 200
_LIVENESS_CHECK = 5.0  # how often an idle watch checks whether its client went away


class HttpServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that remembers its open connections and handler threads."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # many clients (and watches) connect at once in benchmarks

    def __init__(
        self,
        address: tuple[str, int],
        api: Api,
        faults: Faults,
        store: Store,
        timing: Timing,
        audit: AuditLog,
        streams: Streams,
    ):
        self.api, self.faults, self.store, self.timing, self.audit = api, faults, store, timing, audit
        self.streams = streams
        self.closing = threading.Event()
        self._conn_lock = threading.Lock()
        self._conns: dict[socket.socket, threading.Thread] = {}
        super().__init__(address, Handler)

    def process_request(self, request, client_address) -> None:
        thread = threading.Thread(
            target=self._serve, args=(request, client_address), daemon=True, name="cluster-emulator-http"
        )
        with self._conn_lock:
            self._conns[request] = thread
        thread.start()

    def _serve(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - a broken connection must not kill the server
            log.debug("cluster emulator: connection error", exc_info=True)
        finally:
            self.shutdown_request(request)
            with self._conn_lock:
                self._conns.pop(request, None)

    def close_connections(self, timeout: float = 5.0) -> None:
        """Shut every open connection and wait for their threads to finish."""
        self.closing.set()
        with self._conn_lock:
            conns = dict(self._conns)
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread in conns.values():
            thread.join(max(deadline - time.monotonic(), 0.01))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "diploi-cluster-emulator"
    sys_version = ""
    server: HttpServer
    upgraded = False  # the connection became a websocket

    def setup(self) -> None:
        super().setup()
        # Small request/response pairs on keep-alive connections: without this, Nagle's algorithm and
        # delayed ACKs add ~40 ms to every request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802 - the names BaseHTTPRequestHandler dispatches to
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature of the base class
        log.debug("cluster emulator: " + format, *args)

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            self.command,
            parts.path,
            dict(parse_qsl(parts.query, keep_blank_values=True)),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        self.server.audit.record(self.command, request.path, request.query, request.headers.get("user-agent", ""))
        stall, error = self.server.faults.before_request(self.command, self.path)
        if stall and self.server.closing.wait(stall):
            self.close_connection = True
            return
        if error is None and is_stream_path(request.path):
            self.server.streams.handle(self, self.command, request.path, parts.query, request.headers)
            return
        if error is not None:
            response = Response(error.code, error.status(), dict(error.headers))
        elif self.command in ("HEAD", "OPTIONS"):
            error = errors.method_not_allowed()
            response = Response(error.code, error.status())
        else:
            response = self.server.api.handle(request)
        if response.watch is not None:
            self._stream(response.watch)
        elif response.stream is not None:
            self._stream_bytes(response)
        else:
            self._send(response)

    def _send(self, response: Response) -> None:
        body = response.body
        payload = body if isinstance(body, bytes) else dumps(body) if body is not None else b""
        self.send_response(response.code)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(payload)  # one write for headers and body
        self.flush_headers()

    def send_api_error(self, error: errors.ApiError) -> None:
        self._send(Response(error.code, error.status(), dict(error.headers)))

    def upgrade(self, accept: str, protocol: str) -> WebSocket:
        """Switch this connection to a websocket (101), choosing `protocol` (may be empty)."""
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        if protocol:
            self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()
        self.upgraded = True
        self.close_connection = True  # after the websocket, the connection is done
        return WebSocket(self.connection, self.rfile, self.wfile)

    def _stream(self, watch: WatchStream) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            if watch.error is not None:
                self._chunk(dumps({"type": "ERROR", "object": watch.error}) + b"\n")
            else:
                self._pump(watch)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True
        finally:
            if watch.watcher is not None:
                self.server.store.unwatch(watch.watcher)

    def _stream_bytes(self, response: Response) -> None:
        """A followed log: chunks as they come, until the source ends or the client leaves."""
        self.send_response(response.code)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for data in response.stream(self._client_gone):
                if data:
                    self._chunk(data)
                if self.server.closing.is_set():
                    break
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _pump(self, watch: WatchStream) -> None:
        """Send queued events until the watch times out, the client leaves or the server stops."""
        watcher, res = watch.watcher, watch.resource
        clock = time.monotonic
        deadline = clock() + watch.timeout
        interval = self.server.timing.bookmark_interval
        next_bookmark = clock() + interval
        next_check = clock() + _LIVENESS_CHECK
        while True:
            now = clock()
            if now >= deadline:
                return
            wake = min(deadline, next_check, next_bookmark if watch.bookmarks else deadline)
            try:
                item = watcher.queue.get(timeout=max(wake - now, 0.0))
            except queue.Empty:
                now = clock()
                if watch.bookmarks and now >= next_bookmark:
                    self.server.store.bookmark(watcher)
                    next_bookmark = now + interval
                if now >= next_check:
                    if self._client_gone():
                        return
                    next_check = now + _LIVENESS_CHECK
                continue
            items = [item]
            while len(items) < _MAX_BATCH:
                try:
                    items.append(watcher.queue.get_nowait())
                except queue.Empty:
                    break
            lines = []
            done = False
            for entry in items:
                if entry is CLOSE:
                    done = True
                    break
                kind, payload = entry
                if kind.startswith("BOOKMARK"):
                    meta: dict = {"resourceVersion": str(payload)}
                    if kind == "BOOKMARK-INITIAL":
                        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
                    lines.append(
                        dumps(
                            {
                                "type": "BOOKMARK",
                                "object": {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta},
                            }
                        )
                    )
                else:
                    lines.append(b'{"type":"' + kind.encode() + b'","object":' + payload.encoded() + b"}")
            if lines:
                self._chunk(b"\n".join(lines) + b"\n")
                next_bookmark = clock() + interval
            if done:
                return

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _client_gone(self) -> bool:
        """A watch client sends nothing after its request: readable means it closed the connection."""
        if self.server.closing.is_set():
            return True
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True
