"""What an emulated container prints, told from its image and command: a plausible start-up, the
lines it goes on printing while it runs (a web server's request log, a database's checkpoints),
and its last words when it crashes. Nothing runs: these are made-up lines of the right shape,
deterministic for a given container run (same pod, container and restart: same lines).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

_PATHS = ("/", "/health/", "/static/site.css", "/api/items/", "/admin/login/", "/favicon.ico", "/about/")
_METHODS = ("GET", "GET", "GET", "GET", "POST")
_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@dataclass(frozen=True)
class Program:
    """A kind of process: its start-up lines, how its ``n``-th periodic line reads (None: it prints
    nothing after starting), and what it prints when it crashes with ``code``."""

    kind: str
    startup: tuple[str, ...]
    python: bool = False

    def periodic(self, n: int, seed: str, when: datetime) -> str | None:
        pick = _pick(seed, n)
        method, path = _METHODS[pick % len(_METHODS)], _PATHS[(pick // 7) % len(_PATHS)]
        status = 404 if path == "/favicon.ico" else (302 if method == "POST" else 200)
        size = 200 + pick % 4000
        client = f"10.244.0.{1 + pick % 200}"
        if self.kind == "django-dev":
            return f'[{when:%d/%b/%Y %H:%M:%S}] "{method} {path} HTTP/1.1" {status} {size}'
        if self.kind in ("gunicorn", "nginx"):
            request = f'"{method} {path} HTTP/1.1" {status} {size}'
            return f'{client} - - [{when:%d/%b/%Y:%H:%M:%S} +0000] {request} "-" "{_AGENT}"'
        if self.kind == "uvicorn":
            reason = {200: "OK", 302: "Found", 404: "Not Found"}[status]
            return f'INFO:     {client}:{40000 + pick % 20000} - "{method} {path} HTTP/1.1" {status} {reason}'
        if self.kind == "next":
            return f" {method} {path} {status} in {5 + pick % 180}ms"
        if self.kind == "postgres":
            if n % 3:
                return None  # a checkpoint now and then, not on every tick
            return (
                f"{when:%Y-%m-%d %H:%M:%S.%f}"[:-3] + " UTC [27] LOG:  checkpoint complete: wrote "
                f"{1 + pick % 40} buffers ({(pick % 40) / 10:.1f}%); 0 WAL file(s) added, 0 removed, 0 recycled"
            )
        if self.kind == "redis":
            if n % 4:
                return None
            return f"1:M {when:%d %b %Y %H:%M:%S.%f}"[:-3] + " * 1 changes in 3600 seconds. Saving..."
        return None

    def crash(self, code: int) -> str:
        if self.python:
            return (
                "Traceback (most recent call last):\n"
                '  File "/app/main.py", line 42, in <module>\n'
                "    main()\n"
                f"RuntimeError: simulated crash (an injected fault): exiting with status {code}"
            )
        return f"fatal: simulated crash (an injected fault): exiting with status {code}"


def program_for(container: dict, *, init: bool = False) -> Program:
    """The kind of process a container spec runs, from its image, command and args. An init container
    (a clone, a copy) is none of these, whatever its arguments name."""
    if init:
        return Program("other", ())
    image = (container.get("image") or "").lower()
    words = " ".join([image, *(container.get("command") or ()), *(container.get("args") or ())]).lower()
    if "runserver" in words:
        return Program(
            "django-dev",
            (
                "Watching for file changes with StatReloader",
                "Performing system checks...",
                "System check identified no issues (0 silenced).",
                "Django version 5.2, using settings 'config.settings'",
                "Starting development server at http://0.0.0.0:8000/",
                "Quit the server with CONTROL-C.",
            ),
            python=True,
        )
    if "gunicorn" in words:
        return Program(
            "gunicorn",
            (
                "[1] [INFO] Starting gunicorn 23.0.0",
                "[1] [INFO] Listening at: http://0.0.0.0:8000 (1)",
                "[1] [INFO] Using worker: sync",
                "[7] [INFO] Booting worker with pid: 7",
            ),
            python=True,
        )
    if "uvicorn" in words or "fastapi" in words:
        return Program(
            "uvicorn",
            (
                "INFO:     Started server process [1]",
                "INFO:     Waiting for application startup.",
                "INFO:     Application startup complete.",
                "INFO:     Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)",
            ),
            python=True,
        )
    if "next" in words or "npm" in words or image.startswith("node"):
        return Program(
            "next", ("   ▲ Next.js 15.1.0", "   - Local:        http://localhost:3000", " ✓ Ready in 1843ms")
        )
    if "nginx" in words:
        return Program(
            "nginx",
            (
                "/docker-entrypoint.sh: Configuration complete; ready for start up",
                "nginx: [notice] 1#1: start worker processes",
            ),
        )
    if "postgres" in words:
        return Program(
            "postgres",
            (
                "PostgreSQL Database directory appears to contain a database; Skipping initialization",
                "LOG:  starting PostgreSQL 16.6 (Debian 16.6-1.pgdg120+1) on x86_64-pc-linux-gnu",
                'LOG:  listening on IPv4 address "0.0.0.0", port 5432',
                'LOG:  listening on Unix socket "/var/run/postgresql/.s.PGSQL.5432"',
                "LOG:  database system is ready to accept connections",
            ),
        )
    if "redis" in words:
        return Program(
            "redis",
            (
                "1:C oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo",
                "1:M * Server initialized",
                "1:M * Ready to accept connections tcp",
            ),
        )
    return Program("other", ())


def _pick(seed: str, n: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}/{n}".encode(), digest_size=4).digest(), "big")
