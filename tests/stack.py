"""Diploi's own processes, started against the test database, for end-to-end tests.

Embedded (no REDIS_URL): one `manage.py standalone` process. Scaled out (CI:
PostgreSQL and Redis): separate web (daphne), worker (celery) and watcher
processes, as in production. The cluster is the test's emulator, passed as
KUBE_API_URL, so tests can inject faults into it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request
from pathlib import Path

from django.db import connection

from tests.support import free_port, python_command, wait_for

ROOT = Path(__file__).resolve().parents[1]


def test_database_url() -> str:
    """A DATABASE_URL for the database this test run uses (the test database)."""
    conf = connection.settings_dict
    if conf["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{conf['NAME']}"
    auth = conf["USER"] + (f":{conf['PASSWORD']}" if conf["PASSWORD"] else "")
    return f"postgres://{auth}@{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 5432}/{conf['NAME']}"


class DiploiStack:
    def __init__(
        self,
        *,
        data_dir: Path,
        kube_api_url: str | None = None,
        log_dir: Path | None = None,
        env: dict[str, str] | None = None,
        workers: int = 1,
    ):
        self.data_dir = data_dir
        self.workers = workers
        self.kube_api_url = kube_api_url
        self.log_dir = log_dir or data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen] = {}
        self.commands: dict[str, list[str]] = {}
        self.scaled_out = bool(os.environ.get("REDIS_URL"))
        self.extra_env: dict[str, str] = env or {}

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=test_database_url(),
            DIPLOI_DATA_DIR=str(self.data_dir),
            PYTHONUNBUFFERED="1",
            DJANGO_SETTINGS_MODULE="diploi_site.settings",
        )
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        if self.kube_api_url:
            env.update(KUBE_API_URL=self.kube_api_url, CLUSTER_SIMULATED="1")
        env.update(self.extra_env)
        return env

    def start(self) -> DiploiStack:
        if self.scaled_out:
            self._spawn(
                "web", ["-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "diploi_site.asgi:application"]
            )
            for number in range(1, self.workers + 1):
                name = "worker" if number == 1 else f"worker{number}"
                self._spawn(
                    name,
                    ["-m", "celery", "-A", "diploi_site", "worker", "-n", f"{name}@%h"]
                    + ["--pool", "threads", "-c", "4", "-l", "INFO"],
                )
            self._spawn("watcher", ["manage.py", "watch_cluster"])
        else:
            self._spawn("standalone", ["manage.py", "standalone", "--port", str(self.port)])
        try:
            wait_for(self._healthy, timeout=60, what=f"Diploi at {self.url} (logs in {self.log_dir})")
        except BaseException:
            # Nobody else will stop them, and a stray worker would take later tests' tasks.
            self.stop()
            raise
        return self

    def _spawn(self, name: str, args: list[str]) -> None:
        self.commands[name] = args
        log = open(self.log_dir / f"{name}.log", "a")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            python_command(*args), cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT
        )

    def _healthy(self) -> bool:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}: {self.log(name)[-3000:]}")
        return urllib.request.urlopen(f"{self.url}/healthz", timeout=2).read() == b"ok"

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text() if path.exists() else ""

    def kill(self, name: str) -> None:
        """SIGKILL one process: what a crashed machine looks like to the others."""
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait(10)

    def restart(self, name: str) -> None:
        """Start a killed or exited process again, as its supervisor would (its log goes on)."""
        self._spawn(name, self.commands[name])

    def start_another(self, name: str, *, like: str) -> None:
        """Start one more process running what ``like`` runs (a second watcher, say), logged as ``name``."""
        self._spawn(name, self.commands[like])

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


class DiploiProcess:
    """One of Diploi's processes (a Celery worker, the watcher) on the test database and the test's emulator.

    Killable like a crashed machine.
    """

    def __init__(self, args: list[str], *, ready: str, kube_api_url: str, log: Path, env: dict[str, str] | None = None):
        self.args = args
        self.ready = ready
        self.kube_api_url = kube_api_url
        self.log_path = log
        self.extra_env = env or {}
        self.process: subprocess.Popen | None = None

    @classmethod
    def worker(cls, **kwargs) -> DiploiProcess:
        args = [
            "-m",
            "celery",
            "-A",
            "diploi_site",
            "worker",
            "--pool",
            "threads",
            "-c",
            "4",
            "-l",
            "INFO",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ]
        return cls(args, ready="ready.", **kwargs)

    @classmethod
    def watcher(cls, **kwargs) -> DiploiProcess:
        return cls(["manage.py", "watch_cluster"], ready="Watching", **kwargs)

    def start(self) -> DiploiProcess:
        self.spawn()
        try:
            wait_for(lambda: self.ready in self.log() or self._exited(), timeout=60, what=f"{self.args} to start")
        except BaseException:
            self.stop()  # a stray worker would take later tests' tasks
            raise
        return self

    def spawn(self) -> DiploiProcess:
        """Start the process without waiting for it to be ready."""
        env = dict(os.environ)
        env.update(
            DATABASE_URL=test_database_url(),
            KUBE_API_URL=self.kube_api_url,
            CLUSTER_SIMULATED="1",
            PYTHONUNBUFFERED="1",
            **self.extra_env,
        )
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        log = open(self.log_path, "a")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            python_command(*self.args), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        return self

    def _exited(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.args} exited with {self.process.returncode}: {self.log()[-3000:]}")
        return False

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
