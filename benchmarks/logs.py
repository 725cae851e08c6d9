"""Logs (issue 13): a line printed in the emulator to the same line in a subscribed client; 100 viewers.

Setup: one development deployment of the shipped ``static-nginx`` template (one nginx pod), applied
with ``lifecycle.reconcile_run`` to the cluster emulator (a process of its own), ``manage.py
watch_cluster`` and a daphne process on PostgreSQL and the channels-redis layer; 101 team members
(viewers), each with a logged-in session.

1. Latency: one websocket client (``websockets``, asyncio, a member's cookie, ``Origin`` set) on
   the Logs socket of the pod's container (``/ws/deployments/<id>/logs/?pod=…``), caught up. Then
   ``--lines`` lines are printed in the emulator, one every 50 ms, each with its own id. Per line:
   from t0, the moment the emulator's log store wrote it (``time.monotonic()`` inside the emulator
   process, system-wide on Linux), to t1, the moment the client received the message carrying it.
   Median and p95 (targets: < 100 ms, < 250 ms). The client is a websocket client, not a browser:
   a browser's JavaScript adds its own parse and paint on top.
2. Overview render: ``--renders`` sequential GETs of the deployment's Overview page (a member's
   session), median time to the last byte; with no log viewer (before and after the load, both
   in the baseline, as the shared machine's load drifts), and with the viewers below.
3. Load: the container prints 200 lines a second (``--rate``); 100 more clients (``--viewers``),
   each its own member, follow its log and read everything they get. Figures while they do, over
   ``--hold`` seconds: daphne's resident memory (peak; target < 300 MB), the lines each viewer
   received (every line printed reaches each viewer, or is counted as skipped), the Overview's
   median render time with them (target: within 20% of the one without) and, as information, the
   latency of marked lines printed among the chatter and daphne's CPU use. All viewers of the
   container share one follow of it in daphne (`deployments/logs/streams.py`).

    python -m benchmarks.logs [--quick] [--lines N] [--viewers N] [--rate N] [--hold SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import urllib.request

from benchmarks import _common as bench


def seed(viewers: int):
    from deployments.cluster import labels
    from deployments.cluster.connection import get_cluster

    team, users = bench.make_team_and_users(viewers + 1, role="viewer")
    from deployments.models import Membership, Role

    Membership.objects.filter(user=users[0]).update(role=Role.DEVELOPER)
    project = bench.make_project(team, "static-nginx", slug="site")
    (deployment,) = bench.create_deployments(project, 1, actor=users[0], stage="development")
    bench.reconcile_all([deployment.pk], threads=1)
    deployment.refresh_from_db()

    def running_pod():
        pods, _ = get_cluster().list(
            "Pod", namespace=deployment.namespace, label_selector=labels.deployment_selector(deployment.pk)
        )
        running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
        return running[0] if running else None

    pod = bench.wait_for(running_pod, timeout=60, what="the deployment's pod running")
    container = pod["spec"]["containers"][0]["name"]
    cookies = [bench.session_cookie(user) for user in users]
    return deployment, pod["metadata"]["name"], container, cookies


class Viewer:
    """One websocket client on a container's log: counts lines, notes when marked lines arrive."""

    def __init__(self, url: str, path: str, cookie: str):
        self.url, self.path, self.cookie = url, path, cookie
        self.lines = 0
        self.skipped = 0
        self.caught_up = asyncio.Event()
        self.marks: dict[str, float] = {}
        self.closed = False
        self.socket = None

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self.socket = await connect(
            self.url.replace("http://", "ws://") + self.path,
            origin=self.url,
            additional_headers={"Cookie": self.cookie},
            max_size=None,
            open_timeout=60,
        )
        asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        with contextlib.suppress(Exception):  # a dropped socket is counted (closed)
            async for raw in self.socket:
                now = time.monotonic()
                message = json.loads(raw)
                if message.get("state") == "caught-up":
                    self.caught_up.set()
                for _pod, _stamp, text in message.get("lines", ()):
                    self.lines += 1
                    if text.startswith("mark "):
                        self.marks[text.split(" ", 2)[1]] = now
                self.skipped += message.get("skipped", 0)
        self.closed = True

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()


def render_times(url: str, path: str, cookie: str, count: int) -> list[float]:
    """``count`` sequential GETs of ``path``, seconds each to the last byte."""
    times = []
    for _ in range(count):
        request = urllib.request.Request(url + path, headers={"Cookie": cookie})  # noqa: S310 - our own server
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own server
            response.read()
            assert response.status == 200
        times.append(time.perf_counter() - start)
    return times


async def mark_lines(emulator, where: tuple[str, str, str], viewer: Viewer, prefix: str, count: int) -> list[float]:
    """Print ``count`` marked lines, one every 50 ms; the latency of each to ``viewer``, in ms."""
    ids = [f"{prefix}{n}" for n in range(count)]
    for line_id in ids:
        emulator.log(*where, text=f"mark {line_id} GET /probe HTTP/1.1 200", id=line_id)
        await asyncio.sleep(0.05)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(i in viewer.marks and i in emulator.logs_written for i in ids):
        await asyncio.sleep(0.1)
    return [
        (viewer.marks[i] - emulator.logs_written[i]) * 1000
        for i in ids
        if i in viewer.marks and i in emulator.logs_written
    ]


async def run(args, url: str, deployment, where: tuple[str, str, str], cookies: list[str], web, emulator) -> dict:
    namespace, pod, container = where
    path = f"/ws/deployments/{deployment.pk}/logs/?pod={pod}&container={container}"
    overview = f"/deployments/{deployment.pk}/"
    result: dict = {}

    probe = Viewer(url, path, cookies[0])
    await probe.open()
    await asyncio.wait_for(probe.caught_up.wait(), 30)
    result["latency"] = await mark_lines(emulator, where, probe, "q", args.lines)

    result["overview_quiet"] = await asyncio.to_thread(render_times, url, overview, cookies[0], args.renders)
    result["rss_quiet"] = web.rss_mb()

    emulator.print_lines(*where, rate=args.rate)
    viewers = [Viewer(url, path, cookie) for cookie in cookies[1 : args.viewers + 1]]
    for start in range(0, len(viewers), 20):
        await asyncio.gather(*(v.open() for v in viewers[start : start + 20]))
    await asyncio.wait_for(asyncio.gather(*(v.caught_up.wait() for v in viewers)), 120)
    counted_from = [v.lines + v.skipped for v in viewers]
    began, cpu_before = time.monotonic(), web.cpu_seconds()
    peak = web.rss_mb()

    async def watch_memory() -> None:
        nonlocal peak
        while True:
            peak = max(peak, web.rss_mb())
            await asyncio.sleep(0.5)

    memory = asyncio.create_task(watch_memory())
    renders = asyncio.create_task(asyncio.to_thread(render_times, url, overview, cookies[0], args.renders))
    marked = await mark_lines(emulator, where, viewers[0], "l", max(args.lines // 4, 10))
    result["overview_loaded"] = await renders
    while time.monotonic() - began < args.hold:
        await asyncio.sleep(0.5)
    held = time.monotonic() - began
    result["cpu_percent"] = (web.cpu_seconds() - cpu_before) / held * 100
    memory.cancel()
    result["rss_peak"] = max(peak, web.rss_mb())
    result["latency_loaded"] = marked
    received = [v.lines + v.skipped - before for v, before in zip(viewers, counted_from, strict=True)]
    result["lines_per_viewer_per_s"] = bench.median([r / held for r in received])
    result["skipped"] = sum(v.skipped for v in viewers)
    result["open"] = sum(1 for v in viewers if not v.closed)
    result["viewers"] = len(viewers)
    emulator.stop_printing()
    await asyncio.gather(*(v.close() for v in viewers), return_exceptions=True)
    await asyncio.sleep(2)  # the viewers' streams end
    # Quiet again: renders before and after the load make the baseline (the machine's load drifts).
    result["overview_quiet"] += await asyncio.to_thread(render_times, url, overview, cookies[0], args.renders)
    await probe.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer lines, renders and a shorter hold")
    parser.add_argument("--lines", type=int)
    parser.add_argument("--renders", type=int)
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--hold", type=float)
    bench.add_env_option(parser)
    args = parser.parse_args()
    lines, renders, hold = (60, 20, 10) if args.quick else (200, 50, 30)
    args.lines, args.renders, args.hold = args.lines or lines, args.renders or renders, args.hold or hold

    bench.require_services()
    what = f"a log line from the emulator to a websocket client; {args.viewers} viewers of a container"
    bench.banner("logs", f"{what} printing {args.rate:.0f} lines/s")
    emulator = bench.EmulatorProcess()
    processes: list = []
    try:
        bench.setup_django(emulator.url)
        deployment, pod, container, cookies = seed(args.viewers)
        env = bench.base_env(emulator.url, **bench.env_dict(args))
        watcher = bench.start_watcher(env)
        processes.append(watcher)
        web, url = bench.start_web(env)
        processes.append(web)
        bench.wait_all_green([deployment.pk], timeout=120)
        render_times(url, f"/deployments/{deployment.pk}/", cookies[0], 3)  # warm up
        bench.warn_if_busy({emulator.pid, web.pid, watcher.pid})
        result = asyncio.run(run(args, url, deployment, (deployment.namespace, pod, container), cookies, web, emulator))
    finally:
        for process in reversed(processes):
            process.stop()
        emulator.stop()

    latency, loaded = result["latency"], result["latency_loaded"]
    quiet_ms = bench.median(result["overview_quiet"]) * 1000
    busy_ms = bench.median(result["overview_loaded"]) * 1000
    moved = (busy_ms - quiet_ms) / quiet_ms * 100
    table = bench.Table(
        f"logs: {args.lines} lines to one client; {result['viewers']} viewers at {args.rate:.0f} lines/s"
    )
    table.add("lines measured", f"{len(latency)} / {args.lines}", str(args.lines), len(latency) == args.lines)
    table.add(
        "emulator print -> client, median, ms", f"{bench.median(latency):.1f}", "< 100", bench.median(latency) < 100
    )
    p95 = bench.percentile(latency, 95)
    table.add("emulator print -> client, p95, ms", f"{p95:.1f}", "< 250", p95 < 250)
    table.add("daphne RSS, one viewer, MB", f"{result['rss_quiet']:.1f}")
    table.add(
        f"daphne RSS peak, {result['viewers']} viewers, MB",
        f"{result['rss_peak']:.1f}",
        "< 300",
        result["rss_peak"] < 300,
    )
    table.add(
        "viewers still open at the end",
        f"{result['open']} / {result['viewers']}",
        str(result["viewers"]),
        result["open"] == result["viewers"],
    )
    table.add(
        "lines a viewer got (or was told it skipped), per s, median",
        f"{result['lines_per_viewer_per_s']:.0f}",
        f"~{args.rate:.0f}",
    )
    table.add("lines skipped, all viewers", str(result["skipped"]))
    table.add(f"daphne CPU with {result['viewers']} viewers, % of a core", f"{result['cpu_percent']:.0f}")
    table.add("Overview render, no log viewers, median, ms", f"{quiet_ms:.1f}")
    table.add(f"Overview render, {result['viewers']} viewers, median, ms", f"{busy_ms:.1f}")
    table.add("Overview render slower by, %", f"{moved:+.1f}", "< 20", moved < 20)
    if loaded:
        table.add(
            "print -> client among the chatter, median / p95, ms",
            f"{bench.median(loaded):.1f} / {bench.percentile(loaded, 95):.1f}",
        )
    table.print()
    raise SystemExit(1 if table.missed else 0)


if __name__ == "__main__":
    main()
