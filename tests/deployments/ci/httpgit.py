"""A private Git repository over HTTP on 127.0.0.1 (git's smart protocol, through `git http-backend`),
answering only requests with the right basic-auth user name and token; it records what each sent."""

from __future__ import annotations

import base64
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.deployments.ci.sshgit import seed_repository


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self):  # noqa: N802 - http.server's name
        self._serve()

    def do_POST(self):  # noqa: N802 - http.server's name
        self._serve()

    def _serve(self):
        self.server.requests.append((self.path, self.headers.get("Authorization", "")))
        if self.headers.get("Authorization", "") != self.server.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="private"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        environment = {
            "PATH": "/usr/bin:/bin",
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        output = subprocess.run(["git", "http-backend"], input=body, env=environment, capture_output=True).stdout
        head, _, payload = output.partition(b"\r\n\r\n")
        headers = [line.split(":", 1) for line in head.decode().split("\r\n") if ":" in line]
        status = next((int(value.split()[0]) for name, value in headers if name.lower() == "status"), 200)
        self.send_response(status)
        for name, value in headers:
            if name.lower() != "status":
                self.send_header(name, value.strip())
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    expected = ""
    root: Path
    requests: list


class HttpGitServer:
    def __init__(self, root: Path, *, username: str, token: str):
        self.root = root
        self.username, self.token = username, token
        self.repository = root / "private.git"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/private.git"

    def start(self) -> HttpGitServer:
        self.head = seed_repository(self.repository)
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.root = self.root
        self.server.expected = "Basic " + base64.b64encode(f"{self.username}:{self.token}".encode()).decode()
        self.server.requests = []
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
