"""`deployments.cluster.streams`: exec and port-forward against the emulator, over real websockets."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import ssl
import struct
import subprocess
import time

import pytest
from kubernetes import client
from websockets.asyncio.server import serve

from deployments.cluster import errors
from deployments.cluster.connection import reset_cluster
from deployments.cluster.streams import (
    NO_SFTP_SERVER_EXIT,
    SFTP_SERVER_PATHS,
    STDERR,
    STDOUT,
    command_in,
    exec_open,
    portforward_open,
    sftp_server_command,
)
from tests.conftest import need_service
from tests.support import wait_for

NAMESPACE = "streams"


@pytest.fixture
def pod(emulator):
    """A running pod `box` (container `web`, port 8000) in namespace `streams`."""
    with client.ApiClient(emulator.configuration()) as api:
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        wait_for(lambda: core.list_namespaced_service_account(NAMESPACE).items, timeout=10)
        core.create_namespaced_pod(
            NAMESPACE,
            {
                "metadata": {"name": "box"},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "python:3.12-slim",
                            "ports": [{"containerPort": 8000}],
                            "workingDir": "/app",
                            "volumeMounts": [{"name": "code", "mountPath": "/app"}],
                        }
                    ],
                    "volumes": [{"name": "code", "emptyDir": {}}],
                },
            },
        )
        wait_for(
            lambda: (
                (core.read_namespaced_pod("box", NAMESPACE).status.container_statuses or [None])[0]
                and core.read_namespaced_pod("box", NAMESPACE).status.container_statuses[0].state.running
            ),
            timeout=10,
        )
        yield core


async def open_in_box(command: list[str], *, tty: bool = False, container: str = "web", pod: str = "box", **options):
    return await exec_open(namespace=NAMESPACE, pod=pod, container=container, command=command, tty=tty, **options)


async def collect(stream) -> dict[int, bytes]:
    out = {STDOUT: b"", STDERR: b""}
    while (item := await stream.read()) is not None:
        channel, data = item
        out[channel] += data
    return out


async def test_it_splits_stdout_and_stderr_and_reports_the_exit_status(pod):
    stream = await open_in_box(
        ["sh", "-c", "echo out; echo err >&2; exit 7"],
        tty=False,
        stdin=False,
    )
    out = await collect(stream)
    assert out == {STDOUT: b"out\n", STDERR: b"err\n"}
    assert stream.exit_status == 7 and stream.failure is None
    assert stream.protocol == "v5.channel.k8s.io"


async def test_it_reports_success_as_exit_status_zero(pod):
    stream = await open_in_box(["true"], tty=False)
    assert await collect(stream) == {STDOUT: b"", STDERR: b""}
    assert stream.exit_status == 0 and stream.failure is None


async def test_it_round_trips_megabytes_of_stdin_byte_exact_and_closes_it(pod):
    payload = os.urandom(4 * 1024 * 1024)
    stream = await open_in_box(["cat"], tty=False)

    async def feed():
        for start in range(0, len(payload), 300_000):
            await stream.write_stdin(payload[start : start + 300_000])
        await stream.close_stdin()

    feeding = asyncio.create_task(feed())
    out = await collect(stream)
    await feeding
    assert len(out[STDOUT]) == len(payload)
    assert hashlib.sha256(out[STDOUT]).digest() == hashlib.sha256(payload).digest()
    assert stream.exit_status == 0


async def test_it_gives_a_pty_and_applies_resizes(pod):
    # The first size travels as a resize frame after the command started (as kubectl sends it), so the
    # command waits for a line first: frames are applied in order, the size before the line.
    stream = await open_in_box(
        ["sh", "-c", "read first; stty size; read line; stty size"],
        tty=True,
        width=90,
        height=30,
    )
    await stream.write_stdin(b"\n")
    seen = b""
    async with asyncio.timeout(20):
        while b"30 90" not in seen:
            item = await stream.read()
            assert item is not None, f"the stream ended before the size was printed: {seen!r}"
            channel, data = item
            assert channel == STDOUT  # a terminal has one output
            seen += data
    await stream.resize(132, 43)
    await stream.write_stdin(b"\n")
    async with asyncio.timeout(20):
        out = await collect(stream)
    assert b"43 132" in out[STDOUT]
    assert stream.exit_status == 0


async def test_it_ends_with_a_failure_when_the_pod_goes_away(pod):
    stream = await open_in_box(["sleep", "60"], tty=False)
    await asyncio.to_thread(pod.delete_namespaced_pod, "box", NAMESPACE)
    out = await asyncio.wait_for(collect(stream), timeout=10)
    assert out == {STDOUT: b"", STDERR: b""}
    assert stream.exit_status is None
    assert f'pod "{NAMESPACE}/box" is being deleted' in stream.failure


async def test_it_says_why_the_api_server_refused(pod):
    missing = await open_in_box(["true"], pod="nope", container="web", tty=False)
    assert missing.failure == 'pods "nope" not found' and await missing.read() is None
    wrong = await open_in_box(["true"], pod="box", container="db", tty=False)
    assert wrong.failure == "container db is not valid for pod box"
    assert wrong.exit_status is None


async def test_it_raises_a_retryable_error_when_the_cluster_is_unreachable(pod, emulator):
    emulator.take_down()
    try:
        with pytest.raises(errors.ClusterUnavailable) as unreachable:
            await open_in_box(["true"], tty=False)
        assert unreachable.value.retryable
    finally:
        emulator.bring_up()


async def test_it_does_not_read_ahead_of_a_slow_reader(pod):
    """Back-pressure from the reader to the command: unread output stops the producer."""
    marker = f"/tmp/diploi-streams-test-{os.urandom(8).hex()}"
    total = 64 * 1024 * 1024
    stream = await open_in_box(
        ["sh", "-c", f"head -c {total} /dev/zero; touch {marker}"],
        tty=False,
        stdin=False,
    )
    await asyncio.sleep(1.5)
    assert not os.path.exists(marker), "the command wrote everything although nobody read it"
    received = 0
    started = time.monotonic()
    while (item := await stream.read()) is not None:
        received += len(item[1])
    assert received == total and stream.exit_status == 0
    assert os.path.exists(marker)
    os.unlink(marker)
    assert time.monotonic() - started < 60


async def test_it_forwards_a_port_and_carries_an_http_exchange(pod):
    forward = await portforward_open(namespace=NAMESPACE, pod="box", port=8000)
    await forward.write(b"GET /hello HTTP/1.1\r\nHost: box\r\nConnection: close\r\n\r\n")
    response = b""
    while chunk := await forward.read():
        response += chunk
    await forward.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"X-Diploi-Emulated: stand-in" in head
    assert b"port 8000 of pod streams/box" in body and b"GET /hello" in body
    assert forward.failure is None


async def test_it_reports_a_port_nothing_listens_on(pod):
    forward = await portforward_open(namespace=NAMESPACE, pod="box", port=9999)
    assert await forward.read() == b""
    assert "error forwarding port 9999 to pod box" in forward.failure
    assert "connection refused" in forward.failure
    missing = await portforward_open(namespace=NAMESPACE, pod="nope", port=8000)
    assert missing.failure == 'pods "nope" not found' and await missing.read() == b""


# -- a development deployment's code volume, in the emulator ------------------------------------------------


def start_development(make_project, make_member, repository: str):
    """A django-postgres development deployment applied to the emulator; returns (namespace, its app pod)."""
    from deployments import lifecycle, services
    from deployments.cluster.connection import get_cluster
    from deployments.cluster.labels import SERVICE, deployment_selector

    project = make_project("django-postgres")
    project.repository = repository
    project.save()
    deployment = services.deployment_create(project=project, name="dev", stage="development", actor=make_member())
    assert lifecycle.reconcile_run(deployment.pk, owner="test") == "applied"
    deployment.refresh_from_db()
    selector = f"{deployment_selector(deployment.pk)},{SERVICE}=app"

    def running_pod():
        pods, _ = get_cluster().list("Pod", namespace=deployment.namespace, label_selector=selector)
        return next((p["metadata"]["name"] for p in pods if (p.get("status") or {}).get("phase") == "Running"), None)

    return deployment.namespace, wait_for(running_pod, timeout=20, what="the app pod runs")


async def shell(namespace: str, pod: str, script: str) -> str:
    stream = await exec_open(namespace=namespace, pod=pod, container="app", command=["sh", "-c", script], tty=False)
    out = await collect(stream)
    assert stream.exit_status == 0, (stream.failure, out)
    return out[STDOUT].decode()


@pytest.mark.django_db
def test_the_code_volume_holds_what_the_clone_step_fetched(emulator, make_project, make_member, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "manage.py").write_text("print('the real project')\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)

    namespace, pod = start_development(make_project, make_member, f"file://{repo}")
    listing = asyncio.run(shell(namespace, pod, 'pwd; ls -A; cat manage.py; echo "$PATH"'))
    lines = listing.splitlines()
    assert lines[0].endswith(f"/{namespace}/pods/{pod}/app")  # the component's code path, in the pod's directory
    assert ".git" in lines and "manage.py" in lines
    assert "print('the real project')" in lines
    # The template's PATH, /app translated, after the emulator's labelled stand-ins for image programs.
    path = lines[-1].split(":")
    assert path[0].endswith("/.stand-ins")
    assert path[1] == f"{lines[0]}/.venv/bin"


@pytest.mark.django_db
def test_the_code_volume_holds_a_generated_project_when_the_repository_cannot_be_reached(
    emulator, make_project, make_member
):
    namespace, pod = start_development(make_project, make_member, "https://git.invalid/acme/shop.git")
    readme = asyncio.run(shell(namespace, pod, "ls; cat README.md"))
    assert readme.splitlines()[:2] == ["README.md", "hello.py"]
    assert "# Generated by Diploi's cluster emulator" in readme
    assert "https://git.invalid/acme/shop.git" in readme and "git.invalid" in readme.split("failed:")[1]


async def test_it_runs_the_containers_sftp_server_with_binary_stdin_and_stdout(pod):
    machines = next((path for path in SFTP_SERVER_PATHS if os.access(path, os.X_OK)), None)
    if machines is None:
        need_service("OpenSSH's sftp-server (Debian: apt-get install openssh-sftp-server)")
    # An image with OpenSSH's sftp-server where its distribution puts it: in the emulator, the pod's filesystem.
    setup = await open_in_box(
        ["sh", "-c", 'mkdir -p "$DIPLOI_EMULATED_ROOT$(dirname "$0")" && cp "$0" "$DIPLOI_EMULATED_ROOT$0"', machines]
    )
    await collect(setup)
    assert setup.exit_status == 0
    stream = await open_in_box(sftp_server_command())
    await stream.write_stdin(struct.pack(">IBI", 5, 1, 3))  # SSH_FXP_INIT, version 3
    reply = b""
    while len(reply) < 9:
        channel, data = await stream.read()
        assert channel == STDOUT
        reply += data
    assert struct.unpack(">IBI", reply[:9])[1:] == (2, 3)  # SSH_FXP_VERSION 3
    await stream.close_stdin()
    assert await collect(stream) == {STDOUT: b"", STDERR: b""}
    assert stream.exit_status == 0


async def test_it_says_plainly_when_the_container_has_no_sftp_server(pod):
    stream = await open_in_box(sftp_server_command(("/nonexistent/sftp-server",)), stdin=False)
    out = await collect(stream)
    assert stream.exit_status == NO_SFTP_SERVER_EXIT
    assert out[STDERR].startswith(b"this container has no sftp-server (looked in: /nonexistent/sftp-server)")


async def test_an_emulated_container_has_no_sftp_server_its_pod_did_not_get(pod):
    """The places an image keeps sftp-server are looked up in the pod's filesystem, not this machine's."""
    if shutil.which("sftp-server"):
        pytest.skip("sftp-server is on this machine's PATH, which emulated containers share")
    stream = await open_in_box(sftp_server_command(), stdin=False)
    out = await collect(stream)
    assert stream.exit_status == NO_SFTP_SERVER_EXIT
    assert out[STDERR].startswith(
        f"this container has no sftp-server (looked in: {' '.join(SFTP_SERVER_PATHS)})".encode()
    )


async def test_it_starts_a_command_in_a_directory_of_the_container(pod):
    # The pod's container starts in /app; /app/sub is a directory of the pod (in the emulator: of its root).
    await collect(await open_in_box(["mkdir", "-p", "sub"]))
    stream = await open_in_box(command_in("/app/sub", ["sh", "-c", 'pwd; echo "$1"', "sh", "a b"]))
    out = await collect(stream)
    assert out[STDOUT].decode().splitlines()[0].endswith(f"/{NAMESPACE}/pods/box/app/sub")
    assert out[STDOUT].decode().splitlines()[1] == "a b"  # arguments pass through untouched
    stream = await open_in_box(command_in("/no/such/dir", ["sh", "-c", "pwd"]))
    assert (await collect(stream))[STDOUT].decode().strip().endswith(f"/{NAMESPACE}/pods/box/app")
    assert stream.exit_status == 0


# -- against a TLS API server with a bearer token (what a real cluster asks for) -----------------------------


@pytest.fixture
def tls_files(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return key, cert


async def test_it_uses_the_kubeconfigs_server_ca_and_token(settings, tls_files, tmp_path):
    key, cert = tls_files
    seen = {}

    def check(connection, request):
        seen["path"], seen["authorization"] = request.path, request.headers.get("Authorization")
        seen["user_agent"] = request.headers.get("User-Agent")

    async def handler(ws):
        seen["protocol"] = ws.subprotocol
        await ws.send(b"\x01from the server")
        await ws.send(b"\x03" + json.dumps({"metadata": {}, "status": "Success"}).encode())
        await ws.close()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    async with serve(
        handler, "127.0.0.1", 0, ssl=context, process_request=check, subprotocols=["v5.channel.k8s.io"]
    ) as server:
        port = server.sockets[0].getsockname()[1]
        kubeconfig = tmp_path / "kubeconfig"
        ca = base64.b64encode(cert.read_bytes()).decode()
        kubeconfig.write_text(
            f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:{port}", certificate-authority-data: {ca}}}}}]
users: [{{name: u, user: {{token: sekret-token}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
"""
        )
        settings.KUBE_API_URL, settings.KUBECONFIG = "", str(kubeconfig)
        reset_cluster()
        try:
            stream = await exec_open(namespace="ns", pod="p", container="c", command=["ls", "-l /"], tty=False)
            assert await collect(stream) == {STDOUT: b"from the server", STDERR: b""}
        finally:
            reset_cluster()
    assert stream.exit_status == 0
    assert seen["authorization"] == "Bearer sekret-token"
    assert seen["protocol"] == "v5.channel.k8s.io"
    assert seen["user_agent"].startswith("diploi-")
    assert seen["path"] == (
        "/api/v1/namespaces/ns/pods/p/exec?container=c&stdin=true&stdout=true&tty=false&stderr=true"
        "&command=ls&command=-l+%2F"
    )
