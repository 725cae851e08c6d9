"""A small HTTP server for `/healthz`, `/readyz` and `/metrics` on `HEALTH_PORT`.

The worker, the watcher and the SSH gateway serve no HTTP of their own, so
their probes and Prometheus scrapes come here; the web process starts it too,
so every pod is scraped the same way. It runs on a daemon thread and answers
from the same checks as the web's own `/healthz` and `/readyz`.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import connections

from diploi_site.health import readiness
from diploi_site.process import process_name

logger = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    server_version = "diploi-health"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's name
        url = urlsplit(self.path)
        try:
            if url.path == "/healthz":
                self._answer(200, b"ok\n", "text/plain")
            elif url.path == "/readyz":
                self._readyz(verbose="verbose" in parse_qs(url.query, keep_blank_values=True))
            elif url.path == "/metrics":
                from diploi_site.metrics import exposition

                body, content_type = exposition()
                self._answer(200, body, content_type)
            else:
                self._answer(404, b"not found\n", "text/plain")
        finally:
            # Each request runs on a thread of its own: give its database connection back.
            connections.close_all()

    def _readyz(self, *, verbose: bool) -> None:
        checks = readiness()
        ready = all(check.ok for check in checks)
        if verbose:
            body = {"ready": ready, "process": process_name(), "checks": [check.__dict__ for check in checks]}
            self._answer(200 if ready else 503, json.dumps(body).encode(), "application/json")
        elif ready:
            self._answer(200, b"ok\n", "text/plain")
        else:
            failed = "".join(f"{check.name}: {check.detail}\n" for check in checks if not check.ok)
            self._answer(503, f"not ready\n{failed}".encode(), "text/plain")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's signature
        logger.debug("health server: " + format, *args)


class HealthServer:
    """`/healthz`, `/readyz` and `/metrics` on a port, served from a daemon thread."""

    def __init__(self, host: str, port: int):
        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="health-server", daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        logger.info("health and metrics on :%s (/healthz, /readyz, /metrics)", self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


_started: HealthServer | None = None
_lock = threading.Lock()


def start_from_settings() -> HealthServer | None:
    """Start the server on `HEALTH_PORT` once per process (no-op when the setting is empty)."""
    global _started
    if not settings.HEALTH_PORT:
        return None
    with _lock:
        if _started is None:
            _started = HealthServer(settings.HEALTH_HOST, settings.HEALTH_PORT).start()
        return _started
