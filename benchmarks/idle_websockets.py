"""Idle websockets: the web process (daphne) holding 500 idle, authenticated websocket clients.

Setup: 5 projects of 20 ``django-postgres`` deployments each, every one with a
real status tree; 500 team members, each with a logged-in session. A daphne
process on PostgreSQL and Redis (the channels-redis layer) is started and
warmed with one page view. Then 500 websocket clients (``websockets``,
asyncio, each its own member's session cookie, ``Origin`` set) connect: 400
to deployment pages (``/ws/deployments/<id>/``, Overview and Status tabs,
four per deployment) and 100 to project pages (``/ws/projects/<id>/``). Each
gets the page's current fragments on connect; then nothing happens for
``--wait`` seconds (the keep-alive pings go on).

Figures: daphne's resident memory (``/proc/<pid>/status`` VmRSS) before the
clients, once they are all connected, after the wait, and its peak; how many
sockets were still open at the end. Target: under 250 MB with 500 clients.

    python -m benchmarks.idle_websockets [--quick] [--clients N] [--wait SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import urllib.request

from benchmarks import _common as bench


def seed(clients: int):
    from benchmarks.page_queries import seed_project

    team, users = bench.make_team_and_users(clients)
    projects = [seed_project(team, users[0], slug=f"p{i}", count=20) for i in range(5)]
    cookies = [bench.session_cookie(user) for user in users]
    paths = []
    deployments = [d for _, ds in projects for d in ds]
    for i in range(clients):
        if i % 5 == 4:
            project = projects[(i // 5) % len(projects)][0]
            paths.append(f"/ws/projects/{project.pk}/")
        else:
            deployment = deployments[i % len(deployments)]
            tab = "status" if i % 3 == 0 else "overview"
            paths.append(f"/ws/deployments/{deployment.pk}/?tab={tab}")
    return cookies, paths, projects


async def hold(url: str, cookies: list[str], paths: list[str], web: bench.Process, wait: float) -> dict:
    from websockets.asyncio.client import connect

    ws_url = url.replace("http://", "ws://")
    first: dict[int, float] = {}
    closed = 0
    peak = web.rss_mb()

    async def listen(index: int, socket) -> None:
        nonlocal closed
        with contextlib.suppress(Exception):  # a dropped socket is counted below
            async for _message in socket:
                first.setdefault(index, time.monotonic())
        closed += 1

    sockets = []
    start = time.monotonic()
    for batch in range(0, len(paths), 25):
        group = range(batch, min(batch + 25, len(paths)))
        opened = await asyncio.gather(
            *(
                connect(
                    ws_url + paths[i],
                    origin=url,
                    additional_headers={"Cookie": cookies[i]},
                    max_size=None,
                    open_timeout=60,
                )
                for i in group
            )
        )
        for i, socket in zip(group, opened, strict=True):
            sockets.append(socket)
            asyncio.create_task(listen(i, socket))
        peak = max(peak, web.rss_mb())
    while len(first) < len(paths) and time.monotonic() - start < 120:
        await asyncio.sleep(0.2)
    connected = time.monotonic() - start
    after_connect = web.rss_mb()
    peak = max(peak, after_connect)
    end = time.monotonic() + wait
    while time.monotonic() < end:
        await asyncio.sleep(1)
        peak = max(peak, web.rss_mb())
    after_wait = web.rss_mb()
    still_open = len(paths) - closed
    await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    return {
        "connect_seconds": connected,
        "first_fragments": len(first),
        "after_connect": after_connect,
        "after_wait": after_wait,
        "peak": max(peak, after_wait),
        "still_open": still_open,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="wait 10 s instead of 30")
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--wait", type=float)
    bench.add_env_option(parser)
    args = parser.parse_args()
    wait = args.wait or (10 if args.quick else 30)

    bench.require_services()
    bench.banner("idle_websockets", f"daphne's resident memory holding {args.clients} idle websocket clients")
    bench.setup_django(None)
    cookies, paths, projects = seed(args.clients)
    web, url = bench.start_web(bench.base_env(**bench.env_dict(args)))
    try:
        # Warm up: one real page view (templates loaded, connections made), as a running server would be.
        page = f"{url}/projects/{projects[0][0].pk}/"
        request = urllib.request.Request(page, headers={"Cookie": cookies[0]})  # noqa: S310 - our own server
        assert urllib.request.urlopen(request, timeout=30).status == 200  # noqa: S310 - our own server
        time.sleep(1)
        before = web.rss_mb()
        result = asyncio.run(hold(url, cookies, paths, web, wait))
    finally:
        web.stop()
    n = args.clients
    table = bench.Table(f"idle_websockets: {n} clients on one daphne process")
    table.add(
        "clients connected and sent their page's fragments",
        f"{result['first_fragments']} / {n}",
        str(n),
        result["first_fragments"] == n,
    )
    table.add("connecting them all took, s", f"{result['connect_seconds']:.1f}")
    table.add("daphne RSS before the clients, MB", f"{before:.1f}")
    table.add(
        f"daphne RSS with {n} clients connected, MB",
        f"{result['after_connect']:.1f}",
        "< 250",
        result["after_connect"] < 250,
    )
    table.add(
        f"daphne RSS after {wait:.0f}s idle, MB", f"{result['after_wait']:.1f}", "< 250", result["after_wait"] < 250
    )
    table.add("daphne RSS peak, MB", f"{result['peak']:.1f}", "< 250", result["peak"] < 250)
    table.add("per client, KB", f"{(result['after_wait'] - before) * 1024 / n:.0f}")
    table.add("sockets still open after the wait", f"{result['still_open']} / {n}", str(n), result["still_open"] == n)
    table.print()
    raise SystemExit(1 if table.missed else 0)


if __name__ == "__main__":
    main()
