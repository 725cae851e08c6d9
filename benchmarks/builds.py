"""Builds: from a build's last log line to the Builds node updated in a subscribed websocket client.

Setup: N staging deployments (default 10) of the shipped ``static-nginx``
template, created with ``services.deployment_create`` (which queues each one's
first build). The cluster emulator (its own process, fast speed: a simulated
BuildKit build prints its progress over about a quarter of a second), a Celery
worker (the cluster runner: it creates each build's Job and follows its pod's
log), ``watch_cluster`` and daphne run as processes on PostgreSQL and Redis.
One websocket client per deployment (a team member's session cookie) is
connected to ``/ws/deployments/<id>/?tab=status``.

Events: one deployment at a time, in turn, gets a new build of a new commit
(``builds_request``, what "Deploy latest", the webhook and the CI API call).

Measured, per build:
- request → Job: from the ``builds_request`` call to the emulator storing the
  build's Job (the emulator's store, ``time.monotonic()``, system-wide on Linux);
- last log line → Builds node: from t0, the moment the build container's last
  log line became visible in the emulator's pods/log (the push; the container
  ends then), to t1, the moment that deployment's client received a fragment
  whose Builds node shows the build succeeded. In between: the runner sees the
  followed log end, reads the pod's termination message (the digest), records
  the build, the page's consumer re-renders.

    python -m benchmarks.builds [--quick] [--deployments N] [--builds N]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from benchmarks import _common as bench


class Clients:
    """One websocket client per deployment; notes when each build first shows as succeeded."""

    def __init__(self, base_url: str, cookies: dict[int, str]):
        self.ws_url = base_url.replace("http://", "ws://")
        self.origin = base_url
        self.cookies = cookies
        self.wanted: dict[int, tuple[int, str]] = {}  # deployment -> (build id, what its item says when done)
        self.seen: dict[int, float] = {}  # build id -> receipt time
        self.done: dict[int, asyncio.Event] = {}
        self.sockets = []

    async def connect_all(self) -> None:
        from websockets.asyncio.client import connect

        for deployment_id, cookie in self.cookies.items():
            socket = await connect(
                f"{self.ws_url}/ws/deployments/{deployment_id}/?tab=status",
                additional_headers={"Cookie": cookie, "Origin": self.origin},
                max_size=None,
            )
            self.sockets.append(socket)
            asyncio.create_task(self._read(deployment_id, socket))

    async def _read(self, deployment_id: int, socket) -> None:
        async for message in socket:
            now = time.monotonic()
            wanted = self.wanted.get(deployment_id)
            if wanted is None:
                continue
            build_id, text = wanted
            if (
                build_id not in self.seen
                and f'data-key="#{build_id}" data-health="green"' in message
                and text in message
            ):
                self.seen[build_id] = now
                self.done[build_id].set()

    async def close(self) -> None:
        for socket in self.sockets:
            await socket.close()


async def measure(args, url, cookies, deployments, emulator, table: bench.Table) -> None:
    from asgiref.sync import sync_to_async

    from deployments.builds import services as builds
    from deployments.builds.models import Build

    clients = Clients(url, cookies)
    await clients.connect_all()
    to_job, to_node, to_row, row_to_node, failures = [], [], [], [], 0
    try:
        for index in range(args.builds):
            deployment = deployments[index % len(deployments)]
            commit = uuid.uuid4().hex + uuid.uuid4().hex[:8]
            asked = time.monotonic()
            (build,) = await sync_to_async(builds.builds_request)(
                deployment=deployment, trigger="api", commit_sha=commit
            )
            clients.done[build.pk] = asyncio.Event()
            clients.wanted[deployment.pk] = (build.pk, f"{build.component} at {commit[:7]} built")
            try:
                await asyncio.wait_for(clients.done[build.pk].wait(), timeout=20)
            except TimeoutError:
                failures += 1
                continue
            received_wall = time.time() - (time.monotonic() - clients.seen[build.pk])
            job = f"build-{build.pk}"
            pod = next((name for name in emulator.build_ends if name.startswith(f"{job}-")), None)
            if job in emulator.jobs_added:
                to_job.append(emulator.jobs_added[job] - asked)
            if pod is not None:
                to_node.append(clients.seen[build.pk] - emulator.build_ends[pod])
                # Where it goes: the runner (log end → the row says succeeded), then publish and render.
                finished = (await sync_to_async(Build.objects.get)(pk=build.pk)).finished_at.timestamp()
                to_row.append(finished - emulator.build_ends_wall[pod])
                row_to_node.append(received_wall - finished)
    finally:
        await clients.close()

    def ms(values: list[float], p: float | None = None) -> float:
        return 1000 * (bench.median(values) if p is None else bench.percentile(values, p))

    table.add("builds measured", f"{len(to_node)} of {args.builds}", ok=failures == 0 and len(to_node) == args.builds)
    table.add("request → Job created, median ms", f"{ms(to_job):.0f}", "< 1000", ms(to_job) < 1000)
    table.add("request → Job created, p95 ms", f"{ms(to_job, 95):.0f}")
    table.add("last log line → Builds node, median ms", f"{ms(to_node):.0f}", "< 150", ms(to_node) < 150)
    table.add("last log line → Builds node, p95 ms", f"{ms(to_node, 95):.0f}", "< 300", ms(to_node, 95) < 300)
    table.add("  split: last line → row succeeded (runner), median ms", f"{ms(to_row):.0f}")
    table.add("  split: row succeeded → client (publish, render), median ms", f"{ms(row_to_node):.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 deployments, 20 builds")
    parser.add_argument("--deployments", type=int, help="staging deployments (and clients)")
    parser.add_argument("--builds", type=int, help="builds to measure")
    bench.add_env_option(parser)
    args = parser.parse_args()
    args.deployments = args.deployments or (5 if args.quick else 10)
    args.builds = args.builds or (20 if args.quick else 60)

    bench.require_services()
    bench.banner(
        "builds",
        f"""{args.deployments} static-nginx staging deployments, one websocket client each (Status tab); the emulator,
a Celery worker (the cluster runner), watch_cluster and daphne as processes on PostgreSQL and Redis.
{args.builds} builds, one at a time. Measured: the request to the build's Job in the emulator, and the build's
last log line (visible in the emulator's pods/log) to the client showing the build succeeded.""",
    )
    emulator = bench.EmulatorProcess(report_builds=True)
    processes: list[bench.Process] = []
    table = bench.Table(f"builds: {args.deployments} deployments, {args.builds} builds")
    try:
        bench.setup_django(emulator.url)
        env = bench.base_env(emulator.url, **bench.env_dict(args))
        processes.append(bench.start_worker(env))
        processes.append(bench.start_watcher(env))
        web, url = bench.start_web(env)
        processes.append(web)
        team, users = bench.make_team_and_users(args.deployments)
        project = bench.make_project(team, "static-nginx")
        deployments = bench.create_deployments(project, args.deployments, actor=users[0])
        ids = [d.pk for d in deployments]
        bench.wait_all_green(ids, timeout=240)
        cookies = {d.pk: bench.session_cookie(user) for d, user in zip(deployments, users, strict=True)}
        bench.warn_if_busy({p.pid for p in processes} | {emulator.pid})
        asyncio.run(measure(args, url, cookies, deployments, emulator, table))
        table.add("worker CPU during the run, s", f"{processes[0].cpu_seconds():.1f}")
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
