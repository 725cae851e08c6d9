"""Exec and port-forward straight to the cluster emulator: the baseline the SSH gateway is measured against.

The emulator runs in its own process (``benchmarks._emulator``) with one running pod;
this process opens streams with ``deployments/cluster/streams.py`` (asyncio websockets),
exactly as the gateway's bridge does, but with no SSH in between. Figures:

- ``exec true``: from ``exec_open`` to the exit status, median and p95 over ``--runs``
  (the official client's ``kubernetes.stream.stream`` alongside, for comparison);
- stdin throughput: ``--megabytes`` through ``cat > /dev/null`` (written in 256 KiB
  pieces, stdin closed, exit status awaited);
- stdout throughput: ``head -c`` of that size, read to the end;
- port-forward: open, one HTTP request to the pod's stand-in, response read, median.

Targets: ``exec true`` median under 50 ms; both throughputs at least 50 MB/s (the
gateway's 0.8x target is relative to these). No database or Redis is needed.

    python -m benchmarks.exec_streams [--quick] [--runs N] [--megabytes M]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from benchmarks import _common as bench

NAMESPACE, POD = "bench-streams", "box"
_PIECE = 256 * 1024


def make_pod(url: str) -> None:
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = url
    with client.ApiClient(configuration) as api:
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        bench.wait_for(lambda: core.list_namespaced_service_account(NAMESPACE).items, timeout=30, what="ServiceAccount")
        core.create_namespaced_pod(
            NAMESPACE,
            {
                "metadata": {"name": POD},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 8000}]}]},
            },
        )

        def running():
            statuses = core.read_namespaced_pod(POD, NAMESPACE).status.container_statuses or []
            return statuses and statuses[0].state.running

        bench.wait_for(running, timeout=30, what="the pod runs")


def official_client_exec_true(url: str, runs: int) -> list[float]:
    from kubernetes import client
    from kubernetes.stream import stream

    configuration = client.Configuration()
    configuration.host = url
    timings = []
    with client.ApiClient(configuration) as api:
        core = client.CoreV1Api(api)
        for _ in range(runs):
            started = time.perf_counter()
            ws = stream(
                core.connect_get_namespaced_pod_exec,
                POD,
                NAMESPACE,
                command=["true"],
                stdout=True,
                stderr=True,
                stdin=False,
                tty=False,
                _preload_content=False,
            )
            ws.run_forever(timeout=30)
            assert ws.returncode == 0
            timings.append(time.perf_counter() - started)
    return timings


async def exec_true(runs: int) -> list[float]:
    from deployments.cluster.streams import exec_open

    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        stream = await exec_open(namespace=NAMESPACE, pod=POD, container="web", command=["true"], tty=False)
        while await stream.read() is not None:
            pass
        assert stream.exit_status == 0, stream.failure
        timings.append(time.perf_counter() - started)
    return timings


async def stdin_throughput(megabytes: int) -> float:
    from deployments.cluster.streams import exec_open

    piece = b"x" * _PIECE
    total = megabytes * 1024 * 1024
    started = time.perf_counter()
    stream = await exec_open(
        namespace=NAMESPACE, pod=POD, container="web", command=["sh", "-c", "cat > /dev/null"], tty=False
    )

    async def feed():
        for _ in range(total // _PIECE):
            await stream.write_stdin(piece)
        await stream.close_stdin()

    feeding = asyncio.create_task(feed())
    while await stream.read() is not None:
        pass
    await feeding
    assert stream.exit_status == 0, stream.failure
    return megabytes / (time.perf_counter() - started)


async def stdout_throughput(megabytes: int) -> float:
    from deployments.cluster.streams import exec_open

    started = time.perf_counter()
    stream = await exec_open(
        namespace=NAMESPACE,
        pod=POD,
        container="web",
        command=["head", "-c", str(megabytes * 1024 * 1024), "/dev/zero"],
        tty=False,
        stdin=False,
    )
    received = 0
    while (item := await stream.read()) is not None:
        received += len(item[1])
    assert stream.exit_status == 0 and received == megabytes * 1024 * 1024, (stream.failure, received)
    return megabytes / (time.perf_counter() - started)


async def portforward_requests(runs: int) -> list[float]:
    from deployments.cluster.streams import portforward_open

    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        forward = await portforward_open(namespace=NAMESPACE, pod=POD, port=8000)
        await forward.write(b"GET / HTTP/1.1\r\nHost: box\r\nConnection: close\r\n\r\n")
        response = b""
        while chunk := await forward.read():
            response += chunk
        await forward.close()
        assert response.startswith(b"HTTP/1.1 200"), (response[:100], forward.failure)
        timings.append(time.perf_counter() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 runs, 20 MB")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--megabytes", type=int, default=100)
    args = parser.parse_args()
    runs, megabytes = (10, 20) if args.quick else (args.runs, args.megabytes)

    bench.banner("exec_streams", f"exec and port-forward straight to the emulator: {runs} runs, {megabytes} MB")
    emulator = bench.EmulatorProcess()
    try:
        bench.warn_if_busy({emulator.pid})
        make_pod(emulator.url)
        bench.setup_django(emulator.url, fresh=False)

        async def measure():
            await exec_true(2)  # warm-up: imports, the pod's directory
            return (
                await exec_true(runs),
                await stdin_throughput(megabytes),
                await stdout_throughput(megabytes),
                await portforward_requests(runs),
            )

        ours, stdin_rate, stdout_rate, forwards = asyncio.run(measure())
        official = official_client_exec_true(emulator.url, runs)
    finally:
        emulator.stop()

    table = bench.Table("exec and port-forward straight to the emulator")
    table.add(
        "exec true: median (streams.py)", f"{bench.median(ours) * 1000:.1f} ms", "< 50 ms", bench.median(ours) < 0.05
    )
    table.add("exec true: p95 (streams.py)", f"{bench.percentile(ours, 95) * 1000:.1f} ms")
    table.add("exec true: median (official client)", f"{bench.median(official) * 1000:.1f} ms")
    table.add(f"stdin, {megabytes} MB through cat", f"{stdin_rate:.0f} MB/s", ">= 50 MB/s", stdin_rate >= 50)
    table.add(f"stdout, {megabytes} MB from head -c", f"{stdout_rate:.0f} MB/s", ">= 50 MB/s", stdout_rate >= 50)
    table.add("port-forward: one HTTP request, median", f"{bench.median(forwards) * 1000:.1f} ms")
    table.print()
    raise SystemExit(1 if table.missed else 0)


if __name__ == "__main__":
    main()
