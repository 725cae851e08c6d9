"""Runs one action: exec through the Kubernetes API (`pods/exec`) in one ready pod of its component.

The pod is the component's **oldest ready pod** (creation time, then name): deterministic, and
the replica most likely to stay while the command runs (a rollout replaces the oldest last only
when it surges). The command runs in the component's code directory in source stages and in the
image's working directory in build stages (as SSH sessions do, `streams.command_in`), behind a
guard (`GUARD`) that kills it when its stdin closes: closing an exec stream without a terminal
does not end the command on a real kubelet, so cancel and timeout close stdin (v5) and the guard
sends SIGTERM, then SIGKILL after a grace; if the stream itself is cut (the worker died, v4) the
API server closes stdin too.

Threads: the exec stream (asyncio, `deployments.cluster.streams`) lives on an event loop thread of
its own and only appends to a bounded buffer; the task's thread does every database write: the
output's tail every `TICK` while it changes, a heartbeat, the cancel and timeout checks.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from django.conf import settings

from deployments.actions import services
from deployments.actions.models import ActionRun
from deployments.cluster import labels
from deployments.cluster.connection import get_cluster
from deployments.cluster.errors import ClusterError
from deployments.cluster.streams import command_in, exec_open
from deployments.ssh.gateway.pods import is_ready

logger = logging.getLogger(__name__)

TICK = 0.25  # output reaches the row, and the page, at most this late
HEARTBEAT_EVERY = 3.0

# "$@" is the action's argv (never spliced into the script). Its stdin is /dev/null; the watcher
# reads the exec's stdin (fd 3: an asynchronous list's own stdin is /dev/null) and kills it at EOF.
# $1 is the grace in seconds between SIGTERM and SIGKILL. The watcher holds neither stdout nor
# stderr: the exec ends once its output closes, and the grace's `sleep`, outliving the killed
# watcher, would otherwise keep a command that stopped on SIGTERM "running" for the whole grace.
GUARD = (
    'grace=$1; shift; exec 3<&0; "$@" </dev/null & pid=$!; '
    '( while read -r _ <&3; do :; done; kill -TERM "$pid" 2>/dev/null; '
    'sleep "$grace"; kill -KILL "$pid" 2>/dev/null ) >/dev/null 2>&1 & watch=$!; '
    'wait "$pid"; code=$?; kill "$watch" 2>/dev/null; exit "$code"'
)


class NoReadyPod(Exception):
    """The component has no ready pod to run in; the message says so in words."""


def oldest_ready_pod(pods: list[dict], component: str) -> str:
    """The oldest ready pod among ``pods`` (pure): by creation time, then by name."""
    ready = [p for p in pods if is_ready(p)]
    if not ready:
        starting = f" ({len(pods)} starting)" if pods else ""
        raise NoReadyPod(f"no pod of {component} is ready{starting}; run it again once one is")
    ready.sort(key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]))
    return ready[0]["metadata"]["name"]


def guarded(command: list[str], *, workdir: str, grace: int) -> list[str]:
    """The exec argv: ``command`` in ``workdir``, killed when stdin closes (see the module docstring)."""
    return command_in(workdir, ["sh", "-c", GUARD, "diploi-action", str(grace), *command])


class Output:
    """What the command printed: stdout and stderr as they arrive, at most ``limit`` bytes (the end)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._data = bytearray()
        self.seen = 0
        self.version = 0
        self._lock = threading.Lock()

    def add(self, data: bytes) -> None:
        with self._lock:
            self._data += data
            self.seen += len(data)
            self.version += 1
            if len(self._data) > self.limit:
                del self._data[: len(self._data) - self.limit]

    def text(self) -> tuple[str, int, bool, int]:
        """(the kept text, bytes seen, whether some was dropped, the version read)."""
        with self._lock:
            data, seen, version = bytes(self._data), self.seen, self.version
        # PostgreSQL's text holds no NUL: a binary-printing command must not fail its own run.
        return data.decode(errors="replace").replace("\x00", "\ufffd"), seen, seen > len(data), version


class Exec:
    """One exec stream on an event loop thread of its own; `done` is set once it has ended."""

    def __init__(self, output: Output, **open_args):
        self.output = output
        self.open_args = open_args
        self.done = threading.Event()
        self.exit_status: int | None = None
        self.failure: str | None = None
        self.error: Exception | None = None
        self._loop = asyncio.new_event_loop()
        self._stream = None
        self._stop_asked = threading.Event()
        self._thread = threading.Thread(target=self._run, name="action-exec", daemon=True)

    def start(self) -> Exec:
        self._thread.start()
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._follow())
        finally:
            self._loop.close()
            self.done.set()

    async def _follow(self) -> None:
        try:
            self._stream = await exec_open(tty=False, stdin=True, **self.open_args)
            if self._stop_asked.is_set():  # cancelled (or timed out) while the stream was opening
                await self._stream.close_stdin()
            while (item := await self._stream.read()) is not None:
                self.output.add(item[1])
            self.exit_status, self.failure = self._stream.exit_status, self._stream.failure
        except ClusterError as error:
            self.error = error
        except Exception as error:  # noqa: BLE001 - reported as the run's failure, never lost in a thread
            logger.exception("action exec failed")
            self.error = error
        finally:
            if self._stream is not None:
                await self._stream.close()

    def _call(self, make) -> None:
        if self.done.is_set() or self._stream is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout=10)
        except Exception:  # noqa: BLE001 - the loop ended meanwhile: the stream is gone either way
            logger.debug("action exec call after its end", exc_info=True)

    def stop(self) -> None:
        """End-of-file on the command's stdin: the guard kills it (on v4, `cut` does). Idempotent."""
        self._stop_asked.set()
        if self._stream is not None and not self._stream.can_close_stdin:
            self.cut()
        self._call(lambda: self._stream.close_stdin())

    def cut(self) -> None:
        """Close the stream (the API server then ends the command's stdin, and the guard kills it)."""
        self._call(lambda: self._stream.close())

    def join(self) -> None:
        self._thread.join(timeout=15)


def action_run(run_id: int, *, owner: str) -> str:
    """Run a queued action to its end (claimed compare-and-set, so a second execution of the task
    does nothing). Returns the end state, or "not queued". Never retried: an action is not
    idempotent, so every failure before or during the command ends the run with its reason."""
    run = services.action_run_claim(run_id=run_id, runner=owner)
    if run is None:
        return "not queued"
    deployment = run.deployment
    try:
        selector = labels.service_selector(deployment.pk, run.component)
        pods, _ = get_cluster().list(
            "Pod",
            namespace=deployment.namespace,
            label_selector=",".join(f"{key}={value}" for key, value in sorted(selector.items())),
        )
        pod = oldest_ready_pod(pods, run.component)
    except (ClusterError, NoReadyPod) as error:
        why = f"the cluster could not be asked for {run.component}'s pods: {error}"
        if isinstance(error, NoReadyPod):
            why = str(error)
        services.action_run_finish(run=run, runner=owner, state=ActionRun.State.FAILED, message=why[:1000])
        return ActionRun.State.FAILED
    if not services.action_run_where(run=run, runner=owner, pod=pod, container=run.component):
        return "lost"
    workdir = ""
    if deployment.mode == "source" and run.component in {c.id for c in deployment.spec.components}:
        workdir = deployment.spec.component(run.component).code_path
    output = Output(settings.ACTION_OUTPUT_MAX_BYTES)
    grace = settings.ACTION_KILL_GRACE_SECONDS
    stream = Exec(
        output,
        namespace=deployment.namespace,
        pod=pod,
        container=run.component,
        command=guarded(list(run.command), workdir=workdir, grace=grace),
    ).start()
    return _follow(run, owner, stream, output, grace)


def _follow(run: ActionRun, owner: str, stream: Exec, output: Output, grace: int) -> str:
    """Until the command ends: the output into the row, cancel and timeout into a stop."""
    deadline = time.monotonic() + run.timeout_seconds
    stopping: str | None = None  # the end state asked for: cancelled or timed_out
    stop_by = None
    written, beat = 0, time.monotonic()
    try:
        while not stream.done.wait(TICK):
            text, seen, truncated, version = output.text()
            changed = version != written
            if changed or time.monotonic() - beat > HEARTBEAT_EVERY:
                cancel = services.action_run_progress(
                    run=run, runner=owner, output=text if changed else None, seen=seen, truncated=truncated
                )
                written, beat = version, time.monotonic()
            else:
                cancel = ActionRun.objects.filter(pk=run.pk, cancel_requested_at__isnull=False).exists()
            if stopping is None and (cancel or time.monotonic() >= deadline):
                stopping = ActionRun.State.CANCELLED if cancel else ActionRun.State.TIMED_OUT
                stop_by = time.monotonic() + grace + 2
            if stopping is not None:
                stream.stop()  # again each tick: the stream may have opened since
                if time.monotonic() >= stop_by:
                    stream.cut()
    except services.RunLost:
        stream.cut()
        stream.join()
        return "lost"
    stream.join()
    text, seen, truncated, _ = output.text()
    state, message = _outcome(run, stream, stopping)
    services.action_run_finish(
        run=run,
        runner=owner,
        state=state,
        exit_status=stream.exit_status,
        message=message,
        output=text,
        seen=seen,
        truncated=truncated,
    )
    return state


def _outcome(run: ActionRun, stream: Exec, stopping: str | None) -> tuple[str, str]:
    if stopping == ActionRun.State.TIMED_OUT:
        return stopping, f"Timed out after {run.timeout_seconds} s: its stdin was closed, which stopped it."
    if stopping == ActionRun.State.CANCELLED:
        run.refresh_from_db(fields=["cancelled_by"])
        who = run.cancelled_by.username if run.cancelled_by else "Diploi"
        return stopping, f"Cancelled by {who}: its stdin was closed, which stopped it."
    if stream.error is not None:
        return ActionRun.State.FAILED, f"The cluster could not run it: {stream.error}"[:1000]
    if stream.exit_status == 0:
        return ActionRun.State.SUCCEEDED, ""
    if stream.exit_status is not None:
        return ActionRun.State.FAILED, f"Exited with status {stream.exit_status}."
    return ActionRun.State.FAILED, f"It did not report an exit status: {stream.failure or 'no reason given'}"[:1000]
