"""What every benchmark needs: the services, its own database, Diploi's processes, data, figures.

Each benchmark runs on PostgreSQL (database ``diploi_bench``, dropped and
created again at start) and Redis database 13, starts Diploi's own processes
as subprocesses (daphne, ``watch_cluster``) and the cluster emulator in a
process of its own, and prints a table of figures with their targets.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_DB_NAME", "diploi_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
DATABASE_URL = f"{PG_URL}/{DB_NAME}"
# One key per run, shared by the benchmark and the processes it starts (sessions must verify).
SECRET_KEY = secrets.token_urlsafe(50)
PASSWORD = "bench password 1234"  # noqa: S105 - a throwaway account in a throwaway database

LOG_DIR = Path(tempfile.mkdtemp(prefix="diploi-bench-"))


# ----------------------------------------------------------------------------- services


def require_services() -> None:
    """PostgreSQL and Redis must answer; otherwise say so and exit non-zero."""
    import psycopg
    import redis

    problems = []
    try:
        with psycopg.connect(f"{PG_URL}/postgres", connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001 - reported in words
        problems.append(f"PostgreSQL at {PG_URL} is not reachable: {error}".strip())
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as error:  # noqa: BLE001
        problems.append(f"Redis at {REDIS_URL} is not reachable: {error}")
    if problems:
        print("The benchmarks need PostgreSQL and Redis (default: 127.0.0.1:5432 user postgres, 127.0.0.1:6379):")
        for problem in problems:
            print(f"  - {problem}")
        print("Set BENCH_POSTGRES_URL / BENCH_REDIS_URL to use others.")
        sys.exit(2)


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def base_env(kube_api_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of Diploi's processes (and of this one): scaled out on PostgreSQL and Redis."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        SECRET_KEY=SECRET_KEY,
        HTTPS="0",
        DEBUG="0",
        DJANGO_SETTINGS_MODULE="diploi_site.settings",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        DIPLOI_DATA_DIR=str(LOG_DIR / "data"),
    )
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    if kube_api_url:
        env.update(KUBE_API_URL=kube_api_url, CLUSTER_SIMULATED="1")
    env.update(extra)
    return env


def setup_django(kube_api_url: str | None = None, *, fresh: bool = True) -> None:
    """Point this process at the benchmark database (created afresh, migrated, catalog loaded)."""
    os.environ.update(base_env(kube_api_url))
    if fresh:
        recreate_database()
        flush_redis()
    import django

    django.setup()
    if fresh:
        from django.core.management import call_command

        from templates_catalog.loader import sync_catalog

        call_command("migrate", verbosity=0)
        report = sync_catalog()
        if report.failed:
            raise SystemExit(f"the template catalog did not load: {report.summary()}")


def add_env_option(parser) -> None:
    """``--env NAME=VALUE`` (repeatable): extra settings for Diploi's processes, to try a change.

    The figures of record are taken without it: Diploi's defaults, as the README runs it.
    """

    def pair(text: str) -> tuple[str, str]:
        name, _, value = text.partition("=")
        return name, value

    parser.add_argument(
        "--env",
        type=pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for Diploi's processes (an experiment, not the figures of record)",
    )
    parser.set_defaults(env=[])


def env_dict(args) -> dict[str, str]:
    return dict(args.env)


# ----------------------------------------------------------------------------- processes


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """One of Diploi's processes, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]):
        self.name = name
        self.log_path = LOG_DIR / f"{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log()[-3000:]}")

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)  # as a process manager stops it
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()


def start_web(env: dict[str, str]) -> tuple[Process, str]:
    port = free_port()
    web = Process("web", ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "diploi_site.asgi:application"], env)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        web.check()
        return urllib.request.urlopen(f"{url}/healthz", timeout=2).read() == b"ok"  # noqa: S310 - our own server

    wait_for(healthy, timeout=60, what=f"daphne at {url} (log: {web.log_path})")
    return web, url


def start_worker(env: dict[str, str]) -> Process:
    """A Celery worker, as the Procfile runs it."""
    args = [
        "-m",
        "celery",
        "-A",
        "diploi_site",
        "worker",
        "--pool",
        "threads",
        "--concurrency",
        "8",
        "--loglevel",
        "INFO",
    ]
    worker = Process("worker", args, env)

    def started() -> bool:
        worker.check()
        return "ready" in worker.log()

    wait_for(started, timeout=60, what=f"the worker (log: {worker.log_path})")
    return worker


def start_watcher(env: dict[str, str], *, experiment: list[str] | None = None) -> Process:
    """`manage.py watch_cluster`; or, with ``experiment`` options, `benchmarks._watcher` (other loop settings)."""
    args = ["-m", "benchmarks._watcher", *experiment] if experiment else ["manage.py", "watch_cluster"]
    watcher = Process("watcher", args, {"MALLOC_ARENA_MAX": "2", **env})  # as the Procfile runs it

    def started() -> bool:
        watcher.check()
        return "Watching" in watcher.log()

    wait_for(started, timeout=60, what=f"the watcher (log: {watcher.log_path})")
    return watcher


class EmulatorProcess:
    """The cluster emulator in its own process (`benchmarks._emulator`), with fault commands."""

    def __init__(self, *, report_ready: bool = False, report_builds: bool = False):
        self.ready_changes: list[dict] = []
        self.build_ends: dict[str, float] = {}  # build pod name -> when its last log line was visible
        self.build_ends_wall: dict[str, float] = {}  # the same, as wall-clock time
        self.jobs_added: dict[str, float] = {}  # Job name -> when the emulator stored it
        self.logs_written: dict[str, float] = {}  # a `log` command's id -> when the line became visible
        self.on_ready_change: Callable[[dict], None] | None = None
        self.errors: list[str] = []
        args = [sys.executable, "-m", "benchmarks._emulator"] + (["--report-ready"] if report_ready else [])
        args += ["--report-builds"] if report_builds else []
        self._stderr = open(LOG_DIR / "emulator.log", "w")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        first = self.popen.stdout.readline().strip()
        if not first.startswith("READY "):
            raise RuntimeError(f"the emulator did not start: {first!r} (log: {LOG_DIR / 'emulator.log'})")
        self.url = first.split(" ", 1)[1]
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _read(self) -> None:
        for line in self.popen.stdout:
            line = line.rstrip("\n")
            if line.startswith("READY-CHANGE "):
                change = json.loads(line.split(" ", 1)[1])
                with self._lock:
                    self.ready_changes.append(change)
                if self.on_ready_change is not None:
                    self.on_ready_change(change)
            elif line.startswith("BUILD-END "):
                end = json.loads(line.split(" ", 1)[1])
                with self._lock:
                    self.build_ends[end["pod"]] = end["t"]
                    self.build_ends_wall[end["pod"]] = end["wall"]
            elif line.startswith("LOG-WRITTEN "):
                written = json.loads(line.split(" ", 1)[1])
                with self._lock:
                    self.logs_written[written["id"]] = written["t"]
            elif line.startswith("JOB-ADDED "):
                added = json.loads(line.split(" ", 1)[1])
                with self._lock:
                    self.jobs_added[added["name"]] = added["t"]
            elif line.startswith("ERROR"):
                self.errors.append(line)

    def _command(self, **command) -> None:
        self.popen.stdin.write(json.dumps(command) + "\n")
        self.popen.stdin.flush()

    def crash(self, namespace: str, selector: dict | None = None, exit_code: int = 1) -> None:
        self._command(op="crash", namespace=namespace, selector=selector, exit_code=exit_code)

    def heal(self, namespace: str, selector: dict | None = None) -> None:
        self._command(op="heal", namespace=namespace, selector=selector)

    def log(self, namespace: str, pod: str, container: str, text: str, id: str) -> None:
        """Write one line to a container's log; `logs_written[id]` gets its moment."""
        self._command(op="log", namespace=namespace, pod=pod, container=container, text=text, id=id)

    def print_lines(self, namespace: str, pod: str, container: str, rate: float) -> None:
        """The container prints ``rate`` lines a second until `stop_printing()`."""
        self._command(op="print", namespace=namespace, pod=pod, container=container, rate=rate)

    def stop_printing(self) -> None:
        self._command(op="stop_print")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.stdin.close()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._stderr.close()


class RawWatch:
    """A plain watch of the pods in a process of its own (`benchmarks._raw_watch`): what kubectl get -w sees."""

    def __init__(self, url: str, selector: str = "app.kubernetes.io/managed-by=diploi"):
        self.ready_changes: list[dict] = []
        self._lock = threading.Lock()
        self._stderr = open(LOG_DIR / "raw-watch.log", "w")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._raw_watch", url, selector],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        first = self.popen.stdout.readline().strip()
        if first != "WATCHING":
            raise RuntimeError(f"the raw watch did not start: {first!r} (log: {LOG_DIR / 'raw-watch.log'})")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _read(self) -> None:
        for line in self.popen.stdout:
            if line.startswith("READY-CHANGE "):
                with self._lock:
                    self.ready_changes.append(json.loads(line.split(" ", 1)[1]))

    def changes(self) -> list[dict]:
        with self._lock:
            return list(self.ready_changes)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.stdin.close()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._stderr.close()


# ----------------------------------------------------------------------------- /proc


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def busy_others(exclude: set[int]) -> list[str]:
    """Processes of other people using CPU now (they skew timings): 'pid name %cpu'."""

    def ticks() -> dict[int, tuple[str, int]]:
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in exclude:
                continue
            try:
                raw = (entry / "stat").read_text()
            except OSError:
                continue
            name = raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw.rsplit(")", 1)[1].split()
            found[int(entry.name)] = (name, int(fields[11]) + int(fields[12]))
        return found

    before = ticks()
    time.sleep(1)
    after = ticks()
    hz = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, (name, total) in after.items():
        used = (total - before.get(pid, (name, total))[1]) / hz
        if used >= 0.05:
            busy.append(f"{pid} {name} {used * 100:.0f}%")
    return busy


# ----------------------------------------------------------------------------- waiting


def wait_for(check: Callable[[], object], *, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except RuntimeError:
            raise
        except Exception as error:  # noqa: BLE001 - reported on timeout
            last = error
        else:
            if result:
                return result
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last!r})" if last else ""))


# ----------------------------------------------------------------------------- data


def make_team_and_users(count: int, *, role: str = "developer"):
    """A team and ``count`` members with a usable password (hashed once, so this stays fast)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from deployments.models import Membership, Team

    User = get_user_model()
    team = Team.objects.create(name="Bench", slug="bench")
    hashed = make_password(PASSWORD)
    users = User.objects.bulk_create([User(username=f"bench{i}", password=hashed) for i in range(count)])
    Membership.objects.bulk_create([Membership(team=team, user=user, role=role) for user in users])
    return team, list(User.objects.filter(username__startswith="bench").order_by("pk"))


def session_cookie(user) -> str:
    """A logged-in session for ``user``, as the login view creates it: the ``Cookie`` header value."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def make_project(team, template: str = "static-nginx", slug: str = "site"):
    from deployments.models import Project
    from templates_catalog.models import Template

    return Project.objects.create(
        team=team,
        name=slug.capitalize(),
        slug=slug,
        template=Template.objects.get(slug=template),
        repository="https://github.com/acme/site.git",
    )


def create_deployments(project, count: int, *, actor, stage: str = "staging", start: int = 0) -> list:
    """``count`` deployments through the service users call (validation, audit, operation rows)."""
    from deployments import services

    return [
        services.deployment_create(project=project, name=f"d{i:04d}", stage=stage, actor=actor)
        for i in range(start, start + count)
    ]


def report_builds(deployment_ids: list[int]) -> None:
    """Report every queued build of these deployments succeeded, as an external CI would (no worker
    builds here): staging and production run nothing until their first build succeeded."""
    import hashlib

    from deployments.builds import services as builds
    from deployments.builds.models import Build

    for build in Build.objects.filter(deployment_id__in=deployment_ids, state__in=Build.ACTIVE).order_by("pk"):
        digest = "sha256:" + hashlib.sha256(f"bench build {build.pk}".encode()).hexdigest()
        builds.build_succeeded(build_id=build.pk, digest=digest)


def reconcile_all(deployment_ids: list[int], *, threads: int = 8) -> None:
    """Apply each deployment to the cluster, as the worker's task does (here called directly)."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    from deployments.lifecycle import reconcile_run

    def one(deployment_id: int) -> str:
        try:
            return reconcile_run(deployment_id, owner=f"bench-{deployment_id}")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(one, deployment_ids))
    bad = [o for o in outcomes if o not in ("applied", "again")]
    if bad:
        raise RuntimeError(f"some reconciles did not apply: {bad[:5]}")


def wait_all_green(deployment_ids: list[int], *, timeout: float = 180) -> None:
    from deployments.models import DeploymentStatus

    def done() -> bool:
        green = DeploymentStatus.objects.filter(deployment_id__in=deployment_ids, health="green").count()
        return green == len(deployment_ids)

    wait_for(done, timeout=timeout, what=f"{len(deployment_ids)} deployments to be green", interval=0.5)


# ----------------------------------------------------------------------------- realistic cluster objects


def pod_object(
    *,
    name: str,
    namespace: str,
    labels: dict,
    image: str,
    created: datetime,
    ready: bool = True,
    restarts: int = 0,
    crash_looping: bool = False,
    index: int = 0,
) -> dict:
    """A pod as the API server returns it (the emulator's shape): spec, conditions, container status."""
    stamp = created.isoformat().replace("+00:00", "Z")
    started = (created + timedelta(seconds=3)).isoformat().replace("+00:00", "Z")
    state = (
        {"waiting": {"reason": "CrashLoopBackOff", "message": f"back-off 40s restarting failed container={name}"}}
        if crash_looping
        else {"running": {"startedAt": started}}
    )
    last = (
        {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": stamp, "finishedAt": started}}
        if restarts
        else {}
    )
    condition = "True" if ready and not crash_looping else "False"
    conditions = [
        {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": stamp}
        for kind, status in (
            ("PodReadyToStartContainers", "True"),
            ("Initialized", "True"),
            ("Ready", condition),
            ("ContainersReady", condition),
            ("PodScheduled", "True"),
        )
    ]
    container = labels.get("diploi.io/service", "app")
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"00000000-0000-4000-8000-{index:012d}",
            "resourceVersion": str(1000 + index),
            "creationTimestamp": stamp,
            "labels": labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{container}-7d9f8"}],
        },
        "spec": {
            "containers": [
                {
                    "name": container,
                    "image": image,
                    "ports": [{"containerPort": 8000, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
                }
            ],
            "restartPolicy": "Always",
            "nodeName": "emulator-node",
        },
        "status": {
            "phase": "Running",
            "conditions": conditions,
            "hostIP": "10.0.0.10",
            "podIP": f"10.244.{index // 250}.{index % 250 + 2}",
            "startTime": stamp,
            "containerStatuses": [
                {
                    "name": container,
                    "state": state,
                    "lastState": last,
                    "ready": condition == "True",
                    "restartCount": restarts,
                    "image": f"docker.io/library/{image}",
                    "imageID": f"docker.io/library/{image}@sha256:{index:064d}",
                    "containerID": f"containerd://{index:064d}",
                    "started": not crash_looping,
                }
            ],
            "qosClass": "Burstable",
        },
    }


# ----------------------------------------------------------------------------- figures


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Table:
    """Rows of (figure, measured, target, PASS/MISS/info), printed aligned."""

    def __init__(self, title: str):
        self.title = title
        self.rows: list[tuple[str, str, str, str]] = []
        self.missed = False

    def add(self, figure: str, measured: str, target: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("PASS" if ok else "MISS")
        self.missed |= ok is False
        self.rows.append((figure, measured, target, verdict))

    def print(self) -> None:
        header = ("figure", "measured", "target", "")
        widths = [max(len(r[i]) for r in [header, *self.rows]) for i in range(4)]
        print()
        print(f"== {self.title}")
        for row in [header, *self.rows]:
            print("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        print()


def banner(name: str, what: str) -> None:
    print(f"### {name} ({time.strftime('%Y-%m-%d %H:%M:%S')}, load average {load_average()})")
    for line in what.strip().splitlines():
        print(f"  {line}")
    print(f"  logs of the processes: {LOG_DIR}")
    sys.stdout.flush()


def warn_if_busy(exclude: set[int]) -> None:
    others = busy_others(exclude | {os.getpid()})
    if others:
        print("  note: other processes were using CPU when this started (timings may suffer):")
        print("    " + ", ".join(others[:8]))


# ----------------------------------------------------------------------------- churn


class ChurnLoop:
    """A churn: ``step()`` every ``pause`` seconds until ``stop`` is set; errors are counted and the churn
    goes on; deletes finish in the background as the delete task does (`delete_later`)."""

    def __init__(self, *, pause: float):
        self.pause = pause
        self.errors: list[str] = []
        self.stop = threading.Event()
        self._deleting: list[threading.Thread] = []

    def step(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        from django.db import connections

        try:
            while not self.stop.wait(self.pause):
                try:
                    self.step()
                except Exception as error:  # noqa: BLE001 - counted and shown, the churn goes on
                    self.errors.append(repr(error))
        finally:
            for thread in self._deleting:
                thread.join(60)
            connections.close_all()

    def delete_later(self, operation_id: int) -> None:
        thread = threading.Thread(target=self._finish_delete, args=(operation_id,), daemon=True)
        thread.start()
        self._deleting = [t for t in self._deleting if t.is_alive()] + [thread]

    def _finish_delete(self, operation_id: int) -> None:
        """What the delete task does: run until the cluster confirms the namespace is gone."""
        from django.db import connections

        from deployments.lifecycle import StillDeleting, delete_run

        try:
            for _ in range(120):
                try:
                    delete_run(operation_id, owner=f"bench-delete-{operation_id}")
                    return
                except StillDeleting:
                    time.sleep(0.5)
            self.errors.append(f"delete {operation_id} never finished")
        except Exception as error:  # noqa: BLE001
            self.errors.append(repr(error))
        finally:
            connections.close_all()
