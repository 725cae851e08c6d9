"""Timestamps of a status change on its way from the cluster to the browser, for the benchmarks.

With ``DIPLOI_TRACE_FILE`` set, ``trace(stage, deployment_id)`` appends one line,
``<monotonic seconds> <pid> <stage> <deployment id>``, to that file. The file is
opened with O_APPEND and each line is one write, so the lines of several
processes (watcher, web) do not mix; ``time.monotonic()`` is system-wide on
Linux, so their times compare. Unset (always, outside a benchmark), a call costs
one test of a module global.

The stages, in order: ``watch`` (the watcher got an event for the deployment),
``recompute`` (its dirty batch started), ``locked`` (its status row was locked),
``computed``, ``committed`` (a changed status was committed), ``published`` (the
group message was sent), ``consumer`` (a page's consumer got it), ``rendered``,
``sent`` (the fragment was written to the socket): on a deployment page, the header
with the health, which goes first; ``completed``: the page's other fragments were
written after it.
"""

from __future__ import annotations

import os
import time

_path = os.environ.get("DIPLOI_TRACE_FILE") or None
_fd: int | None = None


def enabled() -> bool:
    return _path is not None


def trace(stage: str, deployment_id: int | None) -> None:
    """Record that ``deployment_id`` reached ``stage`` now (no-op unless DIPLOI_TRACE_FILE is set)."""
    global _fd
    if _path is None or deployment_id is None:
        return
    if _fd is None:
        _fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(_fd, f"{time.monotonic():.6f} {os.getpid()} {stage} {deployment_id}\n".encode())


def read(path: str) -> list[tuple[float, int, str, int]]:
    """The lines of a trace file: (monotonic time, pid, stage, deployment id), in file order."""
    found = []
    with open(path) as lines:
        for line in lines:
            moment, pid, stage, deployment = line.split()
            found.append((float(moment), int(pid), stage, int(deployment)))
    return found
