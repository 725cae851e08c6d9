"""Propagation: from a pod turning ready/unready in the cluster to the page showing the new health.

Setup: N deployments (default 200) of the shipped ``static-nginx`` template,
staging stage (one nginx pod each), created with ``services.deployment_create``
and applied with ``lifecycle.reconcile_run`` (what the worker's task calls), all
live in the cluster emulator (its own process). Diploi's ``watch_cluster`` and
a daphne web process run as subprocesses on PostgreSQL and Redis. One
websocket client per deployment (``websockets``, asyncio, each a different
team member's session cookie, ``Origin`` set) is connected to
``/ws/deployments/<id>/?tab=overview``.

Events: a few deployments at a time (``--concurrency``), picked at random, get
a crash fault (their pod's container crash-loops, the pod turns unready);
once that client shows the new health, after a short pause the fault is
healed (the container comes back and the pod turns ready again).

Measured, per event: from t0, the moment the emulator's store wrote the pod
whose ``Ready`` condition changed (``time.monotonic()`` taken in the emulator
process, at the write that a watch of the API server would report), to t1,
the moment the client of that deployment received a fragment whose header
``data-health`` shows the new health (not green after a pod turned unready,
green after it turned ready again). Client and emulator run in different
processes on the same machine; Linux's monotonic clock is system-wide.

Compared with a plain watch: a process of its own (`benchmarks._raw_watch`)
watches the same pods with the official client's `watch.Watch().stream`, as
`kubectl get pods -w` does, and notes when each Ready change arrived. Per event,
from the same t0: the raw watch's arrival and the fragment's arrival, and the
ratio of their medians and of their p95s.

Where the time goes: Diploi's processes stamp each stage of a change on its way
(`diploi_site.tracing`, enabled by DIPLOI_TRACE_FILE): the watcher's watch event,
the start of its recompute, the status row locked, the status computed,
committed, published; the consumer's message, its render, its send. For each
event the chain that produced the client's fragment is read back from the
client's receipt, and the median and p95 of each stage printed.

Two cases by default, each in a fresh database: the latency floor (1
deployment, 1 client, 1 change at a time) and the scale case (200 deployments,
200 clients, 4 changing at a time). ``--deployments N`` runs one case.

    python -m benchmarks.propagation [--quick] [--deployments N] [--events N] [--concurrency K]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import random
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from urllib.parse import urlparse

from benchmarks import _common as bench

HEALTH = re.compile(r'class="deployment-health" data-health="(\w+)"')
SELECTOR = {"diploi.io/service": "web"}


class Clients:
    """One websocket client per deployment, recording (receipt time, header health) of every fragment."""

    def __init__(self, base_url: str, cookies: dict[int, str]):
        self.ws_url = base_url.replace("http://", "ws://")
        self.origin = base_url
        self.cookies = cookies
        self.received: dict[int, list[tuple[float, str]]] = defaultdict(list)
        self.health: dict[int, str] = {}
        self.changed: dict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self.sockets = []
        self.bytes = 0
        self.messages = 0

    async def connect_all(self, batch: int = 20) -> None:
        from websockets.asyncio.client import connect

        ids = list(self.cookies)
        for start in range(0, len(ids), batch):
            group = ids[start : start + batch]
            sockets = await asyncio.gather(
                *(
                    connect(
                        f"{self.ws_url}/ws/deployments/{d}/?tab=overview",
                        origin=self.origin,
                        additional_headers={"Cookie": self.cookies[d]},
                        max_size=None,
                        open_timeout=30,
                    )
                    for d in group
                )
            )
            for deployment_id, socket in zip(group, sockets, strict=True):
                self.sockets.append(socket)
                asyncio.create_task(self._listen(deployment_id, socket))

    async def _listen(self, deployment_id: int, socket) -> None:
        async for message in socket:
            moment = time.monotonic()
            self.messages += 1
            self.bytes += len(message)
            match = HEALTH.search(message)
            if match:
                self.received[deployment_id].append((moment, match.group(1)))
                self.health[deployment_id] = match.group(1)
                self.changed[deployment_id].set()

    async def wait(self, deployment_id: int, want_green: bool, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while (self.health.get(deployment_id) == "green") != want_green:
            event = self.changed[deployment_id]
            event.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(event.wait(), left)
            except TimeoutError:
                return False
        return True

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.sockets), return_exceptions=True)


class Sweeps:
    """When the watcher's periodic full recompute ran, seen from the database.

    Every ``status_store`` call stamps ``observed_at``. The watcher recomputes
    one deployment at a time, and a full recompute goes through all of them in
    the database's order (project, name: here the order of their ids), with no
    other recompute in between. So, stamps sorted by time, a full recompute is
    a long run of strictly increasing deployment ids. Times are turned into
    this machine's monotonic clock to compare with the events.
    """

    def __init__(self, count: int):
        self.count = count
        self.stamps: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from django.db import connection

        from deployments.models import DeploymentStatus

        offset = time.time() - time.monotonic()
        last = None
        try:
            while not self._stop.wait(0.05):
                rows = DeploymentStatus.objects.order_by("observed_at")
                if last is not None:
                    rows = rows.filter(observed_at__gt=last)
                found = list(rows.values_list("observed_at", "deployment_id"))
                if found:
                    last = found[-1][0]
                    self.stamps += [(stamp.timestamp() - offset, deployment) for stamp, deployment in found]
        finally:
            connection.close()

    def stop(self) -> list[tuple[float, float]]:
        """The full recomputes seen: (start, end) in monotonic time."""
        self._stop.set()
        self._thread.join(5)
        windows, run = [], []
        for stamp, deployment in sorted(self.stamps):
            if run and deployment <= run[-1][1]:
                if len(run) >= self.count / 2:
                    windows.append((run[0][0], run[-1][0]))
                run = []
            run.append((stamp, deployment))
        if len(run) >= self.count / 2:
            windows.append((run[0][0], run[-1][0]))
        return windows


class GroupMessages:
    """Subscribes to the channel layer's deployment groups on Redis and notes when each message passed."""

    def __init__(self):
        import redis

        self.seen: dict[int, list[float]] = defaultdict(list)
        self._pubsub = redis.Redis.from_url(bench.REDIS_URL).pubsub(ignore_subscribe_messages=True)
        # The prefix Diploi's settings give the channel layer for this Redis database.
        database = urlparse(bench.REDIS_URL).path.strip("/") or "0"
        self._pubsub.psubscribe(f"diploi{database}__group__deployment.*")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stop = False
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            message = self._pubsub.get_message(timeout=0.5)
            if message and message["type"] == "pmessage":
                moment = time.monotonic()
                channel = message["channel"].decode()
                deployment = channel.rsplit(".", 1)[1]
                if deployment.isdigit():
                    self.seen[int(deployment)].append(moment)

    def stop(self) -> None:
        self._stop = True
        self._thread.join(2)
        self._pubsub.close()


async def drive(clients: Clients, emulator: bench.EmulatorProcess, namespaces: dict[int, str], args) -> dict:
    """Crash and heal deployments, a few at a time, until enough Ready changes happened."""
    idle = list(namespaces)
    random.shuffle(idle)
    cycles = args.events // 2
    started = 0
    timeouts = 0

    async def one_cycle(deployment_id: int) -> None:
        nonlocal timeouts
        namespace = namespaces[deployment_id]
        emulator.crash(namespace, SELECTOR, exit_code=1)
        if not await clients.wait(deployment_id, want_green=False, timeout=15):
            timeouts += 1
        await asyncio.sleep(random.uniform(0.2, 0.6))
        emulator.heal(namespace, SELECTOR)
        if not await clients.wait(deployment_id, want_green=True, timeout=15):
            timeouts += 1

    async def runner() -> None:
        nonlocal started
        while started < cycles:
            started += 1
            deployment_id = idle.pop(0)
            await one_cycle(deployment_id)
            idle.append(deployment_id)
            await asyncio.sleep(random.uniform(0.05, 0.3))

    begin = time.monotonic()
    await asyncio.gather(*(runner() for _ in range(args.concurrency)))
    return {"seconds": time.monotonic() - begin, "timeouts": timeouts, "begin": begin}


# The stages `diploi_site.tracing` stamps, in order, and what the time before each is spent on.
STAGES = (
    ("watch", "watch delivery to the watcher (t0 to its watch event)"),
    ("recompute", "waiting to be recomputed (coalescing, other work)"),
    ("locked", "reading the rows, computing, taking the row's lock (or not: compare-and-set)"),
    ("computed", "computing the status again under the lock (0: not needed)"),
    ("committed", "writing the status and committing (one UPDATE: compare-and-set)"),
    ("published", "to the start of the publish (on-commit)"),
    ("consumer", "pub/sub to the page's consumer"),
    ("rendered", "the consumer's access check, re-read and render (or a wait for one)"),
    ("sent", "handing the frame to daphne"),
)


class Traces:
    """Stage timestamps per deployment, from the trace file Diploi's processes wrote."""

    def __init__(self, path: str):
        from diploi_site.tracing import read

        self.by_deployment: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for moment, _pid, stage, deployment in read(path):
            self.by_deployment[deployment][stage].append(moment)
        for stages in self.by_deployment.values():
            for times in stages.values():
                times.sort()

    def chain(self, deployment_id: int, t0: float, shown: float) -> dict[str, float] | None:
        """The stamps of the change that reached the client at ``shown``: walked back from the last send."""
        stages = self.by_deployment.get(deployment_id, {})
        found: dict[str, float] = {}
        limit = shown
        for stage, _ in reversed(STAGES[1:]):
            times = stages.get(stage, [])
            index = bisect.bisect_right(times, limit) - 1
            if index < 0 or times[index] < t0:
                return None
            found[stage] = limit = times[index]
        watches = stages.get("watch", [])
        index = bisect.bisect_left(watches, t0)
        if index >= len(watches) or watches[index] > found["recompute"]:
            return None
        found["watch"] = watches[index]
        return found

    def completed(self, deployment_id: int, sent: float) -> float | None:
        """When the page's other fragments followed the header sent at ``sent`` (None: sent with it)."""
        times = self.by_deployment.get(deployment_id, {}).get("completed", [])
        index = bisect.bisect_left(times, sent)
        return times[index] if index < len(times) else None


def latencies(changes, namespaces, clients: Clients, groups: GroupMessages, begin: float, sweeps, raw, traces):
    """Per Ready change: a dict of its times in ms (total, watcher and web parts, the raw watch's
    arrival, each stage); and how many never showed."""
    by_namespace = {ns: d for d, ns in namespaces.items()}
    raw_by_namespace: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    for change in raw:
        raw_by_namespace[change["namespace"]].append((change["t"], change["ready"]))
    results, missing = [], 0
    for change in changes:
        if change["t"] < begin or change["namespace"] not in by_namespace:
            continue
        deployment_id = by_namespace[change["namespace"]]
        t0, want_green = change["t"], change["ready"]
        shown = next(
            (t for t, health in clients.received[deployment_id] if t > t0 and (health == "green") == want_green),
            None,
        )
        if shown is None:
            missing += 1
            continue
        published = groups.seen[deployment_id]
        # The group message that made the consumer render it: the last one before the client got it.
        index = bisect.bisect_left(published, shown) - 1
        pub = published[index] if index >= 0 and published[index] >= t0 else None
        arrived = next(
            (t for t, ready in raw_by_namespace[change["namespace"]] if t > t0 and ready == want_green), None
        )
        result = {
            "total": (shown - t0) * 1000,
            "watcher": (pub - t0) * 1000 if pub is not None else None,
            "web": (shown - pub) * 1000 if pub is not None else None,
            "raw": (arrived - t0) * 1000 if arrived is not None else None,
            "ready": want_green,
            "during": any(start - 0.15 <= t0 <= end for start, end in sweeps),
        }
        chain = traces.chain(deployment_id, t0, shown) if traces is not None else None
        if chain is not None:
            previous = t0
            for stage, _ in STAGES:
                result[f"stage:{stage}"] = (chain[stage] - previous) * 1000
                previous = chain[stage]
            result["stage:client"] = (shown - previous) * 1000
            rest = traces.completed(deployment_id, chain["sent"])
            if rest is not None:
                result["rest"] = (rest - chain["sent"]) * 1000
        results.append(result)
    return results, missing


def spread(values: list[float], digits: int = 0) -> str:
    if not values:
        return "-"
    return f"{bench.median(values):.{digits}f} / {bench.percentile(values, 95):.{digits}f}"


def _values(results: list[dict], key: str, **where) -> list[float]:
    return [
        r[key] for r in results if r.get(key) is not None and all(r[name] == value for name, value in where.items())
    ]


async def measure(url: str, cookies: dict[int, str], emulator, namespaces, args, table: bench.Table) -> None:
    clients = Clients(url, cookies)
    connect_start = time.monotonic()
    await clients.connect_all()
    connect_seconds = time.monotonic() - connect_start
    deadline = time.monotonic() + 120
    while sum(1 for h in clients.health.values() if h == "green") < len(cookies):
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(clients.health)} clients got a first fragment, not all green")
        await asyncio.sleep(0.2)
    print(f"  {len(cookies)} websocket clients connected in {connect_seconds:.1f}s, all showing green")

    groups = GroupMessages()
    sweeps = Sweeps(len(cookies))
    raw_watch = bench.RawWatch(emulator.url)
    await asyncio.sleep(1)
    messages_before = clients.messages
    run = await drive(clients, emulator, namespaces, args)
    await asyncio.sleep(1)
    groups.stop()
    windows = sweeps.stop()
    raw_watch.stop()
    with emulator._lock:
        changes = list(emulator.ready_changes)
    traces = Traces(args.trace_file) if args.trace_file else None
    results, missing = latencies(
        changes, namespaces, clients, groups, run["begin"], windows, raw_watch.changes(), traces
    )
    totals = _values(results, "total")
    raws = _values(results, "raw")
    pushes = clients.messages - messages_before
    print(
        f"  {len(results)} Ready changes measured over {run['seconds']:.0f}s "
        f"({len(results) / run['seconds']:.1f}/s, {args.concurrency} deployments in trouble at a time); "
        f"{pushes} fragments pushed to clients meanwhile ({pushes / run['seconds']:.0f}/s, "
        f"{clients.bytes / max(clients.messages, 1) / 1024:.0f} KiB each)"
    )
    await clients.close()

    wanted = args.events // 2
    lost = missing + run["timeouts"]
    floor = len(cookies) == 1
    median_ratio = bench.median(totals) / bench.median(raws) if raws else float("nan")
    p95_ratio = bench.percentile(totals, 95) / bench.percentile(raws, 95) if raws else float("nan")
    table.add("events measured (pod Ready changes)", str(len(results)), f">= {wanted}", len(results) >= wanted)
    table.add("events never shown (or timed out)", str(lost), "0", lost == 0)
    table.add("events the raw watch saw", str(len(raws)), str(len(results)), len(raws) == len(results))
    table.add("fragment: median / p95, ms", spread(totals, 1))
    table.add("raw watch: median / p95, ms", spread(raws, 1))
    table.add("median, ms", f"{bench.median(totals):.0f}", "< 150", bench.median(totals) < 150)
    table.add("p95, ms", f"{bench.percentile(totals, 95):.0f}", "< 300", bench.percentile(totals, 95) < 300)
    table.add(
        "fragment / raw watch, medians",
        f"{median_ratio:.2f}x",
        "<= 1.5x" if floor else "<= 2x",
        median_ratio <= (1.5 if floor else 2.0),
    )
    table.add(
        "fragment / raw watch, p95s",
        f"{p95_ratio:.2f}x",
        "<= 2x" if floor else "<= 3x",
        p95_ratio <= (2 if floor else 3),
    )
    table.add("max, ms", f"{max(totals):.0f}" if totals else "-")
    table.add("  turned unready: median / p95, ms", spread(_values(results, "total", ready=False)))
    table.add("  turned ready: median / p95, ms", spread(_values(results, "total", ready=True)))
    table.add("  watcher part (to Redis): median / p95, ms", spread(_values(results, "watcher")))
    table.add("  web part (Redis to client): median / p95, ms", spread(_values(results, "web")))
    traced = _values(results, "stage:watch")
    if traces is not None:
        table.add("  stages (events fully traced)", f"{len(traced)} of {len(results)}")
        for stage, what in (*STAGES, ("client", "the frame to the client")):
            table.add(f"    {stage}: {what}, median / p95, ms", spread(_values(results, f"stage:{stage}"), 1))
        if rest := _values(results, "rest"):
            table.add("    then the tab's other fragments, after the header: median / p95, ms", spread(rest, 1))
    during = _values(results, "total", during=True)
    outside = _values(results, "total", during=False)
    if floor:
        return  # one deployment: a full recompute is one status, nothing to tell apart
    lengths = [end - start for start, end in windows]
    table.add(
        "  watcher's full recomputes (every 10 s): seen / median length, s",
        f"{len(windows)} / {bench.median(lengths):.2f}" if windows else "0 / -",
    )
    table.add(
        "  events during a full recompute: n, median / p95, ms",
        f"{len(during)}, {spread(during)}" if during else "0",
    )
    table.add(
        "  other events: n, median / p95, ms",
        f"{len(outside)}, {spread(outside)}" if outside else "0",
    )


def both_cases(argv: list[str]) -> None:
    """The latency floor, then the scale case, each in a process (and a database) of its own."""
    quick = "--quick" in argv
    floor = ["--deployments", "1", "--concurrency", "1", "--events", "40" if quick else "100"]
    scale = ["--deployments", "50" if quick else "200"]
    codes = []
    for case in (floor, scale):
        codes.append(subprocess.run([sys.executable, "-m", "benchmarks.propagation", *argv, *case]).returncode)
    raise SystemExit(max(codes))


def main() -> None:
    if not any(arg.startswith("--deployments") for arg in sys.argv[1:]):
        both_cases(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 deployments, 60 events (the floor: 40 events)")
    parser.add_argument("--deployments", type=int, help="one case: N deployments and clients (default: both cases)")
    parser.add_argument("--events", type=int, help="Ready changes to measure (two per crash/heal)")
    parser.add_argument("--concurrency", type=int, default=4, help="deployments in trouble at the same time")
    parser.add_argument("--watcher-coalesce", type=float, help="experiment: the watcher's coalesce window (0.05)")
    parser.add_argument(
        "--watcher-recompute-every", type=float, help="experiment: the watcher's full recompute period (10)"
    )
    bench.add_env_option(parser)
    args = parser.parse_args()
    args.deployments = args.deployments or (50 if args.quick else 200)
    args.events = args.events or (60 if args.quick else 300)

    bench.require_services()
    bench.banner(
        "propagation",
        f"""{args.deployments} static-nginx deployments (one pod each), {args.deployments} websocket clients (one per
deployment, Overview tab), watch_cluster and daphne as processes on PostgreSQL and Redis.
Measured per event: from t0, when the emulator wrote the pod whose Ready condition changed (crash fault:
unready; heal: ready again), to t1, when that deployment's client received a fragment whose header
data-health shows the new health (not green / green). {args.concurrency} deployments in trouble at a time.""",
    )
    emulator = bench.EmulatorProcess(report_ready=True)
    processes: list[bench.Process] = []
    try:
        bench.setup_django(emulator.url)
        team, users = bench.make_team_and_users(args.deployments)
        project = bench.make_project(team, "static-nginx")
        start = time.monotonic()
        deployments = bench.create_deployments(project, args.deployments, actor=users[0])
        ids = [d.pk for d in deployments]
        bench.report_builds(ids)
        # The save hook queued reconcile tasks; no worker runs here: apply them directly instead.
        bench.flush_redis()
        bench.reconcile_all(ids)
        print(f"  created and applied {len(ids)} deployments in {time.monotonic() - start:.1f}s")
        args.trace_file = str(bench.LOG_DIR / "trace.log")
        env = bench.base_env(emulator.url, DIPLOI_TRACE_FILE=args.trace_file, **bench.env_dict(args))
        experiment = []
        if args.watcher_coalesce is not None:
            experiment += ["--coalesce", str(args.watcher_coalesce)]
        if args.watcher_recompute_every is not None:
            experiment += ["--recompute-every", str(args.watcher_recompute_every)]
        if experiment or args.env:
            shown = f"watcher {experiment or 'as shipped'}, env {args.env or 'none'}"
            print(f"  EXPERIMENT, not Diploi's defaults: {shown}")
        processes.append(bench.start_watcher(env, experiment=experiment))
        web, url = bench.start_web(env)
        processes.append(web)
        bench.wait_all_green(ids)
        print(f"  all green {time.monotonic() - start:.1f}s after the first create")
        cookies = {d.pk: bench.session_cookie(user) for d, user in zip(deployments, users, strict=True)}
        namespaces = {d.pk: d.namespace for d in deployments}
        bench.warn_if_busy({p.pid for p in processes} | {emulator.pid})
        table = bench.Table(
            f"propagation: {args.deployments} deployment{'s' if args.deployments != 1 else ''}, "
            f"{args.deployments} websocket client{'s' if args.deployments != 1 else ''}, "
            f"{args.concurrency} changing at a time"
        )
        asyncio.run(measure(url, cookies, emulator, namespaces, args, table))
        table.add("watcher CPU during the run, s", f"{processes[0].cpu_seconds():.1f}")
        table.add("web (daphne) CPU during the run, s", f"{web.cpu_seconds():.1f}")
        table.print()
        if emulator.errors:
            print("  emulator errors:", emulator.errors[:3])
    finally:
        for process in processes:
            process.stop()
        emulator.stop()
    raise SystemExit(1 if table.missed else 0)


if __name__ == "__main__":
    main()
