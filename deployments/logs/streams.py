"""The one place that opens container log streams from the cluster (`pods/{name}/log`), bounded.

`LogStream` follows the logs of one or more containers (one per replica, interleaved as they
arrive, each line naming its pod) with ``timestamps=true``. Each source is read by a thread
through the shared `Cluster` client (its TLS, token and client-certificate settings work for
the emulator and a real API server alike); the asyncio side only awaits `read()`.

Bounded: at most `window` lines wait for the reader. When the reader (a websocket) is slower
than the containers print, the oldest waiting lines are dropped and counted: the next batch
says how many were skipped, so the page shows "… N lines skipped" instead of the web process
buffering without limit.

Resuming: a `Position` is the last timestamp a reader saw and how many lines carried exactly
that timestamp (lines printed at once share one). The stream asks the API server for
``sinceTime`` = that timestamp and drops what the reader already has, so a reconnect neither
repeats lines nor leaves a gap the cluster still holds.

`close()` ends every source now (their HTTP responses are shut from this thread) and is
idempotent; a consumer calls it when its socket closes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections import deque
from dataclasses import dataclass, field

from deployments.cluster import errors
from deployments.cluster.connection import get_cluster

logger = logging.getLogger(__name__)

WINDOW = 2000  # lines waiting for the reader, per stream
RETRY_SECONDS = 1.0  # a cut follow resumes after this
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")


def stamp_key(stamp: str) -> str | None:
    """An RFC 3339 UTC timestamp as the kubelet writes it (nanoseconds, trailing zeros trimmed)
    normalised to nine fraction digits, so that keys compare as strings; None if it is not one."""
    match = _STAMP.match(stamp)
    if match is None:
        return None
    return f"{match.group(1)}.{(match.group(2) or '').ljust(9, '0')}Z"


@dataclass(frozen=True)
class Source:
    pod: str
    container: str


@dataclass(frozen=True)
class Position:
    """Where a reader is in one pod's log: the last timestamp seen, and how many lines had it."""

    stamp: str
    seen: int = 1

    @classmethod
    def parse(cls, text: str) -> Position:
        """From ``<stamp>`` or ``<stamp>~<seen>``; ValueError for anything else."""
        stamp, _, seen = text.partition("~")
        if stamp_key(stamp) is None:
            raise ValueError(f"not an RFC 3339 UTC timestamp: {stamp!r}")
        count = int(seen) if seen else 1
        if count < 0:
            raise ValueError("the count of lines seen cannot be negative")
        return cls(stamp, count)


@dataclass(frozen=True)
class LogLine:
    pod: str
    stamp: str
    text: str


@dataclass
class Batch:
    """What arrived since the last read: ``skipped`` lines were dropped before ``lines``;
    ``ended`` names sources that stopped, with why."""

    lines: list[LogLine] = field(default_factory=list)
    skipped: int = 0
    ended: list[tuple[str, str]] = field(default_factory=list)


class _Dedupe:
    """Drops what a reader at `Position` already saw; then tracks the position itself."""

    def __init__(self, position: Position | None):
        self.key = stamp_key(position.stamp) if position else None
        self.stamp = position.stamp if position else None
        self.same = position.seen if position else 0  # lines at `key` still to drop (then: seen)
        self._dropping = position is not None

    def admit(self, stamp: str) -> bool:
        key = stamp_key(stamp)
        if key is None:
            return True  # not a timestamped line (should not happen with timestamps=true)
        if self._dropping and self.key is not None:
            if key < self.key:
                return False
            if key == self.key and self.same > 0:
                self.same -= 1
                return False
            self._dropping = False
        if key == self.key:
            self.same += 1
        else:
            self.key, self.stamp, self.same = key, stamp, 1
        return True

    def position(self) -> Position | None:
        return Position(self.stamp, self.same) if self.stamp else None


class LogStream:
    """Follows the logs of `sources` in `namespace` (see the module docstring). Not restartable:
    open a new one to read again."""

    def __init__(
        self,
        *,
        namespace: str,
        sources: list[Source],
        previous: bool = False,
        follow: bool = True,
        resume: dict[str, Position] | None = None,
        tail: int | None = 500,
        window: int = WINDOW,
    ):
        if not sources:
            raise ValueError("a log stream needs at least one container")
        self.namespace = namespace
        self.sources = list(sources)
        self.previous = previous
        self.follow = follow and not previous  # a previous container has ended: nothing to follow
        self.resume = dict(resume or {})
        self.tail = tail
        self.window = window
        self._lock = threading.Lock()
        self._lines: deque[LogLine] = deque()
        self._skipped = 0
        self._ended: list[tuple[str, str]] = []
        self._running = 0
        self._stop = threading.Event()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._signalled = False
        self._threads: list[threading.Thread] = []

    # -- the asyncio side ---------------------------------------------------------------------------

    def start(self) -> LogStream:
        """Open every source (each in its own thread). Call from the event loop that reads."""
        self._loop = asyncio.get_running_loop()
        self._running = len(self.sources)
        for source in self.sources:
            thread = threading.Thread(
                target=self._follow, args=(source,), name=f"logs {self.namespace}/{source.pod}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        return self

    async def read(self) -> Batch | None:
        """The next batch (waits for one); None once every source has ended and all was read."""
        while True:
            with self._lock:
                if self._lines or self._skipped or self._ended:
                    batch = Batch(list(self._lines), self._skipped, self._ended)
                    self._lines.clear()
                    self._skipped, self._ended = 0, []
                    self._signalled = False
                    self._wake.clear()
                    return batch
                if self._running == 0 or self._stop.is_set():
                    return None
                self._signalled = False
                self._wake.clear()
            await self._wake.wait()

    async def close(self) -> None:
        """End every source now (idempotent). Threads finish on their own a moment later."""
        if self._stop.is_set():
            return
        self._stop.set()
        try:
            get_cluster().interrupt_watches(self._stop)
        except errors.ClusterError:
            pass
        self._wake.set()

    # -- the reading threads ------------------------------------------------------------------------

    def _follow(self, source: Source) -> None:
        dedupe = _Dedupe(self.resume.get(source.pod))
        reason = "the container stopped" if self.follow else "end of the log"
        first = True
        try:
            while not self._stop.is_set():
                position = dedupe.position()
                try:
                    lines = get_cluster().pod_log(
                        source.pod,
                        self.namespace,
                        container=source.container,
                        follow=self.follow,
                        previous=self.previous,
                        since_time=position.stamp if position else None,
                        tail_lines=self.tail if first and position is None else None,
                        stop=self._stop,
                    )
                    for raw in lines:
                        stamp, _, text = raw.partition(" ")
                        if dedupe.admit(stamp):
                            self._push(LogLine(source.pod, stamp, text))
                    break
                except errors.ClusterUnavailable as error:
                    if not self.follow:
                        reason = f"the log was cut: {error}"
                        break
                    logger.info("log stream of %s/%s cut, resuming: %s", self.namespace, source.pod, error)
                    first = False
                    if self._stop.wait(RETRY_SECONDS):
                        break
                except errors.ClusterError as error:  # no such pod, container not started, no previous run
                    reason = str(error)
                    break
        except Exception:  # noqa: BLE001 - a reading thread must always say it ended
            logger.exception("log stream of %s/%s failed", self.namespace, source.pod)
            reason = "reading the log failed (see the server log)"
        finally:
            with self._lock:
                self._running -= 1
                if not self._stop.is_set():
                    self._ended.append((source.pod, reason))
            self._signal()

    def _push(self, line: LogLine) -> None:
        with self._lock:
            if len(self._lines) >= self.window:
                self._lines.popleft()  # the reader is behind: drop the oldest, and say so
                self._skipped += 1
            self._lines.append(line)
        self._signal()

    def _signal(self) -> None:
        # One wake-up per batch, not per line: a chatty container must not flood the event loop.
        with self._lock:
            if self._signalled or self._loop is None:
                return
            self._signalled = True
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the loop closed under us: nobody reads any more
            self._stop.set()
