"""Container logs of the simulated cluster, bounded, served by `pods/{name}/log`.

Each container run (a pod's container, per restart) keeps at most
`LINES_PER_CONTAINER` lines, and the store at most `CONTAINERS` runs (the
oldest go first); a deleted pod's logs go with it. A line may be written
ahead of time with the moment it becomes visible (a simulated build prints
its progress over seconds): readers and followers only ever see lines whose
moment has come.

A running container may also be given a `Chatter`: lines it goes on printing every `interval`
seconds (a web server's request log, see `programs`). They are made when someone reads or
writes that container's log, for every moment that has come since, each stamped with its own
moment: nothing ticks for a container nobody reads, and what a reader sees is the same as if
they had been printed on time.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

LINES_PER_CONTAINER = 5000
CONTAINERS = 4000


@dataclass
class Chatter:
    """The ``n``-th periodic line (n = 0, 1, ...) is due at ``start + (n + 1) * interval``; ``line(n, wall)``
    says what it reads (None: nothing that time), ``wall`` being its moment as a datetime."""

    start: float
    interval: float
    line: Callable[[int, datetime], str | None]
    next: int = 0

    def due(self, n: int) -> float:
        return self.start + (n + 1) * self.interval


@dataclass
class _Run:
    lines: deque = field(default_factory=lambda: deque(maxlen=LINES_PER_CONTAINER))  # (seq, visible_at, stamp, text)
    ends_at: float | None = None  # the container stops writing then (monotonic)
    chatter: Chatter | None = None


def _wall(at: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=at - time.monotonic())


def _stamp(at: float) -> str:
    """RFC 3339 with nanoseconds, as the kubelet writes `timestamps=true`, for monotonic time ``at``."""
    return _wall(at).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


class PodLogs:
    """Every container run's lines. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._runs: OrderedDict[tuple[str, str, str, int], _Run] = OrderedDict()
        self._cond = threading.Condition()
        self._seq = itertools.count(1)
        self._end_listeners: list[Callable[[str, str, str, float], None]] = []

    def add_end_listener(self, listener: Callable[[str, str, str, float], None]) -> None:
        """Call ``listener(namespace, pod, container, t)`` when a container run ends; ``t`` is when its
        last line became visible (monotonic): for benchmarks."""
        self._end_listeners.append(listener)

    def write(self, namespace: str, pod: str, container: str, restart: int, text: str, *, at: float | None = None):
        """Add lines (``text`` split on newlines), visible from ``at`` (default: now)."""
        at = self._clock() if at is None else at
        with self._cond:
            run = self._run(namespace, pod, container, restart)
            self._chatter(run, at)  # what it printed before: earlier lines first, as stamps must go
            # One stamp for the whole write: computed per line, the wall clock's jitter against the
            # monotonic one could make a later line's stamp earlier, which no kubelet does.
            stamp = _stamp(at)
            for line in text.splitlines():
                run.lines.append((next(self._seq), at, stamp, line))
            self._cond.notify_all()

    def chatter(
        self,
        namespace: str,
        pod: str,
        container: str,
        restart: int,
        *,
        interval: float,
        line: Callable[[int, datetime], str | None],
        start: float | None = None,
    ) -> None:
        """From ``start`` (default: now) until it ends, the container prints ``line(n, wall)`` every
        ``interval`` seconds (see the module docstring)."""
        if interval <= 0:
            raise ValueError("a chatter interval must be positive")
        with self._cond:
            run = self._run(namespace, pod, container, restart)
            run.chatter = Chatter(self._clock() if start is None else start, interval, line)

    def end(self, namespace: str, pod: str, container: str, restart: int, *, at: float | None = None) -> None:
        """The container stops at ``at``: what it would have printed later is dropped, and followers end
        once they have read up to it."""
        at = self._clock() if at is None else at
        with self._cond:
            run = self._run(namespace, pod, container, restart)
            self._chatter(run, at)
            run.chatter = None
            run.ends_at = at
            while run.lines and run.lines[-1][1] > at:
                run.lines.pop()
            last = run.lines[-1][1] if run.lines else at
            self._cond.notify_all()
        for listener in self._end_listeners:
            listener(namespace, pod, container, last)

    def forget_pod(self, namespace: str, pod: str) -> None:
        with self._cond:
            for key in [k for k in self._runs if k[:2] == (namespace, pod)]:
                del self._runs[key]
                self._cond.notify_all()

    def has(self, namespace: str, pod: str, container: str, restart: int) -> bool:
        with self._cond:
            return (namespace, pod, container, restart) in self._runs

    def _chatter(self, run: _Run, until: float) -> None:
        """Add the run's periodic lines due by ``until`` (at most a store's worth: older ones would
        only be dropped). Called with the lock held."""
        chatter = run.chatter
        if chatter is None or chatter.due(chatter.next) > until:
            return
        last = int((until - chatter.start) / chatter.interval) - 1  # the last line due by then
        chatter.next = max(chatter.next, last - LINES_PER_CONTAINER + 1)
        while chatter.next <= last and chatter.due(chatter.next) <= until:
            at = chatter.due(chatter.next)
            text = chatter.line(chatter.next, _wall(at))
            if text is not None:
                run.lines.append((next(self._seq), at, _stamp(at), text))
            chatter.next += 1

    def _run(self, namespace: str, pod: str, container: str, restart: int) -> _Run:
        key = (namespace, pod, container, restart)
        run = self._runs.get(key)
        if run is None:
            run = self._runs[key] = _Run()
            while len(self._runs) > CONTAINERS:
                self._runs.popitem(last=False)
        return run

    def read(
        self,
        key: tuple[str, str, str, int],
        *,
        since: str | None = None,
        tail: int | None = None,
        timestamps: bool = False,
        follow: bool = False,
        gone: Callable[[], bool] = lambda: False,
        limit_seconds: float = 3600,
    ) -> Iterator[bytes]:
        """The visible lines (the last ``tail`` of them, none before ``since``); with ``follow``, then each
        new line as it becomes visible, until the container ended, ``gone()`` says the reader left, or
        ``limit_seconds`` passed."""
        deadline = self._clock() + limit_seconds
        with self._cond:
            run = self._runs.get(key)
            now = self._clock()
            if run is not None:
                self._chatter(run, now)
            visible = [entry for entry in (run.lines if run else ()) if entry[1] <= now]
            # Lines become visible in the order they were written: everything up to here is dealt with.
            sent = visible[-1][0] if visible else 0
            if since:
                visible = [entry for entry in visible if entry[2] >= since]
            if tail is not None:
                visible = visible[-tail:] if tail else []
        yield self._format(visible, timestamps)
        if not follow or run is None:
            return
        while True:
            with self._cond:
                if self._runs.get(key) is not run:
                    return  # the pod was deleted
                now = self._clock()
                self._chatter(run, now)
                pending = []
                for entry in reversed(run.lines):  # from the newest: a follower is near the end
                    if entry[0] <= sent:
                        break
                    pending.append(entry)
                pending.reverse()
                ready = [entry for entry in pending if entry[1] <= now]
                if ready:
                    sent = ready[-1][0]
                waiting = pending[len(ready) :]
                finished = run.ends_at is not None and run.ends_at <= now and not waiting
                if not ready and not finished:
                    wake = waiting[0][1] - now if waiting else 0.5
                    if run.ends_at is not None:
                        wake = min(wake, run.ends_at - now)
                    if run.chatter is not None:
                        wake = min(wake, run.chatter.due(run.chatter.next) - now)
                    self._cond.wait(min(max(wake, 0.005), 0.5))
            if ready:
                yield self._format(ready, timestamps)
            elif finished or gone() or self._clock() >= deadline:
                return

    @staticmethod
    def _format(entries: list, timestamps: bool) -> bytes:
        if not entries:
            return b""
        if timestamps:
            return "".join(f"{stamp} {text}\n" for _, _, stamp, text in entries).encode()
        return "".join(f"{text}\n" for _, _, _, text in entries).encode()
