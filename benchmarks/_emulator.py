"""The cluster emulator in its own process, driven by the benchmark over stdin/stdout.

    python -m benchmarks._emulator [--report-ready]

Prints ``READY <url>`` once listening, then reads one JSON command per line on
stdin (``{"op": "crash" | "heal" | "clear", ...}``, the arguments of
``emulator.faults``) and answers each with ``OK`` or ``ERROR <message>``.

With ``--report-builds`` the end of every simulated build container is printed as
``BUILD-END {"namespace", "pod", "t", "wall"}`` (``t``: when its last log line became visible;
``wall``: the same moment as ``time.time()``), and
every Job created as ``JOB-ADDED {"namespace", "name", "t"}``.

With ``--report-ready`` every change of a pod's ``Ready`` condition is
printed as ``READY-CHANGE {"namespace", "pod", "ready", "t"}`` where ``t`` is
``time.monotonic()`` (a system-wide clock on Linux, comparable between
processes) taken inside the emulator's store at the write that changed it:
the moment a watcher of the API could first learn about it.

Log commands: ``{"op": "log", "namespace", "pod", "container", "text", "id"}`` writes one line to a
container's log (restart 0) and prints ``LOG-WRITTEN {"id", "t"}`` (``t``: the moment it was written
and became visible, ``time.monotonic()``); ``{"op": "print", "namespace", "pod", "container",
"rate"}`` makes that container print ``rate`` lines a second (in writes of 10 ms) until
``{"op": "stop_print"}``.

Running it apart keeps its CPU (controllers, watch fan-out, JSON) out of the
process that measures.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time

from cluster_emulator import ClusterEmulator
from cluster_emulator.resources import JOBS, PODS


def _ready(pod: dict | None) -> bool | None:
    if pod is None:
        return None
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--report-ready", action="store_true")
    parser.add_argument("--report-builds", action="store_true")
    args = parser.parse_args()

    out = queue.SimpleQueue()
    emulator = ClusterEmulator(port=args.port, speed="fast")

    if args.report_ready:

        def listener(change) -> None:
            # Runs under the store's lock: note the time and queue, nothing else.
            if change.resource is not PODS or change.type != "MODIFIED":
                return
            before, after = _ready(change.old), _ready(change.obj)
            if before != after:
                meta = change.obj["metadata"]
                out.put(("READY-CHANGE", time.monotonic(), meta.get("namespace", ""), meta["name"], after))

        emulator.store.add_listener(listener)

    if args.report_builds:

        def build_ended(namespace: str, pod: str, container: str, moment: float) -> None:
            if container == "build":
                wall = time.time() - (time.monotonic() - moment)  # the same moment, as wall-clock time
                out.put("BUILD-END " + json.dumps({"namespace": namespace, "pod": pod, "t": moment, "wall": wall}))

        def job_added(change) -> None:
            if change.resource is JOBS and change.type == "ADDED":
                meta = change.obj["metadata"]
                stamp = time.monotonic()
                out.put("JOB-ADDED " + json.dumps({"namespace": meta["namespace"], "name": meta["name"], "t": stamp}))

        emulator.logs.add_end_listener(build_ended)
        emulator.store.add_listener(job_added)

    def writer() -> None:
        while True:
            item = out.get()
            if item is None:
                return
            if isinstance(item, str):
                line = item
            else:
                _, moment, namespace, pod, ready = item
                line = "READY-CHANGE " + json.dumps({"namespace": namespace, "pod": pod, "ready": ready, "t": moment})
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    printing = threading.Event()

    def printer(namespace: str, pod: str, container: str, rate: float) -> None:
        """``rate`` lines a second, written every 10 ms on a schedule (no drift under load)."""
        start, written = time.monotonic(), 0
        while not printing.wait(0.01):
            due = int((time.monotonic() - start) * rate)
            if due > written:
                text = "\n".join(f"chatter {n} GET /items/{n % 97} HTTP/1.1 200" for n in range(written, due))
                emulator.logs.write(namespace, pod, container, 0, text)
                written = due

    def log_line(namespace: str, pod: str, container: str, text: str, id: str) -> None:
        moment = time.monotonic()
        emulator.logs.write(namespace, pod, container, 0, text, at=moment)
        out.put("LOG-WRITTEN " + json.dumps({"id": id, "t": moment}))

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    emulator.start()
    out.put(f"READY {emulator.url}")
    try:
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                command = json.loads(line)
                op = command.pop("op")
                if op == "crash":
                    emulator.faults.crash(command.pop("namespace", None), **command)
                elif op == "heal":
                    emulator.faults.heal(command.pop("namespace", None), **command)
                elif op == "fail_builds":
                    emulator.faults.fail_builds(command.pop("namespace", None), **command)
                elif op == "heal_builds":
                    emulator.faults.heal_builds()
                elif op == "clear":
                    emulator.faults.clear()
                elif op == "log":
                    log_line(**command)
                elif op == "print":
                    printing.clear()
                    threading.Thread(target=printer, kwargs=command, daemon=True).start()
                elif op == "stop_print":
                    printing.set()
                else:
                    raise ValueError(f"unknown op {op!r}")
            except Exception as error:  # noqa: BLE001 - reported to the driver
                out.put(f"ERROR {error}")
            else:
                out.put("OK")
    finally:
        emulator.stop()
        out.put(None)
        thread.join(2)


if __name__ == "__main__":
    main()
