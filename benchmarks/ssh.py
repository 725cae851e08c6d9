"""The SSH gateway (issue 11): what it adds to an exec, its throughput, its memory with idle sessions.

Setup: the cluster emulator in its own process, a ``django-postgres`` development
deployment applied to it (``lifecycle.reconcile_run``), a developer with an ed25519
key made by ``ssh-keygen`` and added with ``ssh_key_add``, and ``manage.py ssh_gateway``
as a process of its own on PostgreSQL, listening on 127.0.0.1.

1. Latency: ``ssh <user>@127.0.0.1 true`` (OpenSSH, a new connection each time: key
   exchange, authentication, authorization, pod choice, session row, exec) from start
   to exit, ``--runs`` times; against the same command through the exec API straight to
   the emulator with the official client (``kubernetes.stream.stream``, what ``kubectl
   exec`` does). Target: the gateway adds at most 50 ms to the median.
2. Throughput: ``--megabytes`` of stdin through ``ssh <user>@127.0.0.1 'cat > /dev/null'``
   against the same bytes written straight to an exec of ``cat > /dev/null``
   (``deployments.cluster.streams``, the gateway's own client), ``--repeats`` times each,
   interleaved (one 100 MB transfer lasts under a second, and on a shared machine a single
   pair gave ratios from 0.3 to 1.4); the ratio of the medians. Target: at least 0.8x. The ssh
   side includes its connection (key exchange, authentication: the latency above); also printed,
   for information, the ratio once the stream is open (each side's median for an empty stream
   taken off). Also the gateway's CPU time per transfer (median): on a busy 2-core machine the
   gateway competes with the OpenSSH client and the emulator (which unmasks websocket frames in
   Python) for the same cores.
3. Memory: ``--sessions`` concurrent idle sessions (asyncssh clients, each running ``cat``
   that waits on its stdin); the gateway's resident memory (VmRSS) before and with them
   all open. Target: under 200 MB.

    python -m benchmarks.ssh [--quick] [--runs N] [--megabytes N] [--repeats N] [--sessions N]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import time

from benchmarks import _common as bench

LATENCY_BUDGET_MS = 50
THROUGHPUT_RATIO = 0.8
MEMORY_BUDGET_MB = 200


def seed(key_path) -> tuple[str, dict]:
    """A running development deployment and a developer's registered key: (SSH user, the pod's coordinates)."""
    from deployments import lifecycle, services
    from deployments.cluster.connection import get_cluster
    from deployments.cluster.labels import service_selector
    from deployments.ssh.gateway.pods import is_ready
    from deployments.ssh.naming import ssh_user_for
    from deployments.ssh.services import ssh_key_add

    team, (user,) = bench.make_team_and_users(1)
    project = bench.make_project(team, template="django-postgres", slug="shop")
    deployment = services.deployment_create(project=project, name="dev", stage="development", actor=user)
    if lifecycle.reconcile_run(deployment.pk, owner="bench") != "applied":
        raise RuntimeError("the deployment did not apply")
    deployment.refresh_from_db()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_path)], check=True)
    ssh_key_add(user=user, name="bench", public_key=key_path.with_suffix(".pub").read_text(), actor=user)
    selector = ",".join(f"{k}={v}" for k, v in service_selector(deployment.pk, "app").items())

    def ready_pod() -> str | None:
        pods, _ = get_cluster().list("Pod", namespace=deployment.namespace, label_selector=selector)
        return next((p["metadata"]["name"] for p in pods if is_ready(p)), None)

    pod = bench.wait_for(ready_pod, timeout=60, what="the app pod to be ready")
    where = {"namespace": deployment.namespace, "pod": pod, "container": "app"}
    return ssh_user_for(component="app", deployment="dev", project="shop"), where


def start_gateway(env: dict[str, str], port: int) -> bench.Process:
    gateway = bench.Process("ssh-gateway", ["manage.py", "ssh_gateway", "--listen", f"127.0.0.1:{port}"], env)

    def listening() -> bool:
        gateway.check()
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    bench.wait_for(listening, timeout=60, what=f"the SSH gateway (log: {gateway.log_path})")
    return gateway


def ssh_command(port: int, key_path, known_hosts, user: str, *command: str) -> list[str]:
    return [
        "ssh", "-p", str(port), "-F", "/dev/null", "-i", str(key_path),
        "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
        "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
        f"{user}@127.0.0.1", *command,
    ]  # fmt: skip


def timed(args: list[str], **kwargs) -> float:
    started = time.perf_counter()
    result = subprocess.run(args, capture_output=True, **kwargs)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{args[-1]!r} failed ({result.returncode}): {result.stderr.decode()[-500:]}")
    return elapsed


def straight_exec_seconds(where: dict, command: list[str]) -> float:
    """One exec through the official client, as `kubectl exec` makes it, start to end."""
    from kubernetes import client as k8s
    from kubernetes.stream import stream

    from deployments.cluster.connection import get_cluster

    core = k8s.CoreV1Api(get_cluster().api)
    started = time.perf_counter()
    response = stream(
        core.connect_get_namespaced_pod_exec,
        where["pod"],
        where["namespace"],
        container=where["container"],
        command=command,
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    response.run_forever(timeout=30)
    elapsed = time.perf_counter() - started
    code = response.returncode
    response.close()
    if code != 0:
        raise RuntimeError(f"straight exec of {command} exited {code}")
    return elapsed


def straight_stream_seconds(where: dict, total: int) -> float:
    """``total`` bytes into an exec of `cat > /dev/null` through deployments.cluster.streams."""
    from deployments.cluster import streams

    chunk = b"\0" * (256 * 1024)

    async def run() -> float:
        started = time.perf_counter()
        exec_stream = await streams.exec_open(
            namespace=where["namespace"],
            pod=where["pod"],
            container=where["container"],
            command=["sh", "-c", "cat > /dev/null"],
            tty=False,
        )
        sent = 0
        while sent < total:
            await exec_stream.write_stdin(chunk)
            sent += len(chunk)
        await exec_stream.close_stdin()
        while await exec_stream.read() is not None:
            pass
        elapsed = time.perf_counter() - started
        if exec_stream.exit_status != 0:
            raise RuntimeError(f"cat exited {exec_stream.exit_status}: {exec_stream.failure}")
        await exec_stream.close()
        return elapsed

    return asyncio.run(run())


def ssh_stream_seconds(port: int, key_path, known_hosts, user: str, total: int) -> float:
    args = ssh_command(port, key_path, known_hosts, user, "cat > /dev/null")
    started = time.perf_counter()
    source = subprocess.Popen(["head", "-c", str(total), "/dev/zero"], stdout=subprocess.PIPE)
    result = subprocess.run(args, stdin=source.stdout, capture_output=True)
    source.wait()
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"ssh cat failed ({result.returncode}): {result.stderr.decode()[-500:]}")
    return elapsed


async def hold_sessions(port: int, key_path, known_hosts_text: str, user: str, count: int, gateway) -> dict:
    import asyncssh

    key = asyncssh.read_private_key(str(key_path))
    known = asyncssh.import_known_hosts(known_hosts_text)
    held = []

    async def one() -> None:
        conn = await asyncssh.connect(
            "127.0.0.1", port, username=user, client_keys=[key], known_hosts=known, agent_path=None
        )
        process = await conn.create_process("cat", encoding=None)
        held.append((conn, process))

    before = gateway.rss_mb()
    peak = before
    for start in range(0, count, 20):  # 20 at a time: as people arrive, not one burst of key exchanges
        await asyncio.gather(*(one() for _ in range(min(20, count - start))))
        peak = max(peak, gateway.rss_mb())
    await asyncio.sleep(3)
    alive = sum(1 for _, process in held if process.exit_status is None)
    with_all = gateway.rss_mb()
    for conn, process in held:
        process.stdin.write_eof()
        conn.close()
    await asyncio.gather(*(conn.wait_closed() for conn, _ in held))
    return {"before": before, "with_all": with_all, "peak": max(peak, with_all), "alive": alive}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer runs, 20 MB, 50 sessions")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--megabytes", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None, help="transfers of each kind (default 7, quick 3)")
    parser.add_argument("--sessions", type=int, default=None)
    args = parser.parse_args()
    runs = args.runs or (10 if args.quick else 20)
    megabytes = args.megabytes or (20 if args.quick else 100)
    repeats = args.repeats or (3 if args.quick else 7)
    sessions = args.sessions or (50 if args.quick else 200)

    bench.require_services()
    print(f"logs: {bench.LOG_DIR}   load: {bench.load_average()}")
    emulator = bench.EmulatorProcess()
    gateway = None
    try:
        bench.setup_django(emulator.url)
        key_path = bench.LOG_DIR / "id_ed25519"
        user, where = seed(key_path)
        port = bench.free_port()
        env = bench.base_env(emulator.url, SSH_HOST="127.0.0.1", SSH_PORT=str(port))
        gateway = start_gateway(env, port)

        from django.test import override_settings

        from deployments.ssh.hostkey import known_hosts_line

        with override_settings(SSH_HOST="127.0.0.1", SSH_PORT=port):
            known_hosts_text = known_hosts_line() + "\n"
        known_hosts = bench.LOG_DIR / "known_hosts"
        known_hosts.write_text(known_hosts_text)
        busy = bench.busy_others({gateway.pid, emulator.pid})
        if busy:
            print("other busy processes: " + "; ".join(busy))

        # 1. latency (one warm-up each, not counted)
        ssh_true = ssh_command(port, key_path, known_hosts, user, "true")
        timed(ssh_true)
        straight_exec_seconds(where, ["true"])
        ssh_times, exec_times = [], []
        for _ in range(runs):  # interleaved, so a busy moment weighs on both
            ssh_times.append(timed(ssh_true) * 1000)
            exec_times.append(straight_exec_seconds(where, ["true"]) * 1000)
        ssh_median, exec_median = statistics.median(ssh_times), statistics.median(exec_times)
        added = ssh_median - exec_median

        # 2. throughput (interleaved, as the latency)
        total = megabytes * 1024 * 1024
        straight_times, ssh_times_mb, gateway_cpus, straight_empty, ssh_empty = [], [], [], [], []
        for _ in range(repeats):
            straight_times.append(straight_stream_seconds(where, total))
            cpu_before = gateway.cpu_seconds()
            ssh_times_mb.append(ssh_stream_seconds(port, key_path, known_hosts, user, total))
            gateway_cpus.append(gateway.cpu_seconds() - cpu_before)
            # The same with no bytes: what opening the stream costs (the SSH handshake on one side).
            straight_empty.append(straight_stream_seconds(where, 0))
            ssh_empty.append(ssh_stream_seconds(port, key_path, known_hosts, user, 0))
        straight_mb_s = megabytes / statistics.median(straight_times)
        ssh_mb_s = megabytes / statistics.median(ssh_times_mb)
        gateway_cpu = statistics.median(gateway_cpus)
        ratio = ssh_mb_s / straight_mb_s
        # Once the stream is open: the median time less the median time of an empty stream.
        streamed = (statistics.median(ssh_times_mb) - statistics.median(ssh_empty)) or float("nan")
        streamed_straight = (statistics.median(straight_times) - statistics.median(straight_empty)) or float("nan")
        streaming_ratio = streamed_straight / streamed

        # 3. memory
        held = asyncio.run(hold_sessions(port, key_path, known_hosts_text, user, sessions, gateway))

        rows = [
            ("`ssh … true` median (ms)", f"{ssh_median:.1f}", "", None),
            ("straight exec median (ms)", f"{exec_median:.1f}", "", None),
            ("gateway adds, median (ms)", f"{added:.1f}", f"<= {LATENCY_BUDGET_MS}", added <= LATENCY_BUDGET_MS),
            (f"{megabytes} MB straight exec, median of {repeats} (MB/s)", f"{straight_mb_s:.1f}", "", None),
            (f"{megabytes} MB through ssh, median of {repeats} (MB/s)", f"{ssh_mb_s:.1f}", "", None),
            ("throughput ratio", f"{ratio:.2f}", f">= {THROUGHPUT_RATIO}", ratio >= THROUGHPUT_RATIO),
            ("  ratio once open (empty stream's time taken off)", f"{streaming_ratio:.2f}", "", None),
            (f"gateway CPU per {megabytes} MB, median (s)", f"{gateway_cpu:.2f}", "", None),
            ("gateway RSS before (MB)", f"{held['before']:.1f}", "", None),
            (
                f"gateway RSS, {sessions} idle sessions (MB)",
                f"{held['with_all']:.1f}",
                f"< {MEMORY_BUDGET_MB}",
                held["with_all"] < MEMORY_BUDGET_MB,
            ),
            ("gateway RSS peak (MB)", f"{held['peak']:.1f}", "", None),
            ("sessions still open after 3 s", f"{held['alive']}/{sessions}", f"{sessions}", held["alive"] == sessions),
        ]
        return _print(rows)
    finally:
        if gateway is not None:
            gateway.stop()
        emulator.stop()


def _print(rows) -> int:
    width = max(len(name) for name, *_ in rows)
    missed = False
    print(f"\nSSH gateway ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    for name, value, target, ok in rows:
        verdict = "" if ok is None else ("PASS" if ok else "MISS")
        missed |= ok is False
        print(f"  {name:<{width}}  {value:>10}  {target:>8}  {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
