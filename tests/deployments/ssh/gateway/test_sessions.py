"""What a session does, through the real clients: commands, stdin, a PTY, `ssh -L`, sftp and scp,
and the session's row. The container is an emulated pod (a directory on this machine)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import time
import urllib.request

import pytest
from asgiref.sync import sync_to_async

from deployments.ssh.models import SSHSession
from deployments.ssh.services import ssh_key_remove
from tests.deployments.ssh.gateway.test_robustness import connect
from tests.support import free_port, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_thread_connections")]


def test_a_command_keeps_stdout_stderr_and_its_exit_status(openssh, registered, running):
    target = running()
    result = openssh.ssh(target.ssh_user, "echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout) == (3, b"out\n")
    assert result.stderr == b"err\n"


def test_it_starts_in_the_components_code_directory(openssh, registered, running):
    target = running()
    result = openssh.ssh(target.ssh_user, "pwd; ls")
    assert result.returncode == 0, result.stderr
    cwd, *files = result.stdout.decode().splitlines()
    code_path = target.deployment.spec.component(target.component).code_path
    assert cwd.endswith(code_path)  # in the emulator, the pod's directory standing for /app
    assert "README.md" in files  # what the clone step fetched (here the emulator's generated project)


def test_megabytes_of_stdin_go_through_byte_exact_until_eof(openssh, registered, running):
    target = running()
    data = os.urandom(5 * 1024 * 1024)
    result = openssh.ssh(target.ssh_user, "cat", input=data)
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(result.stdout).hexdigest() == hashlib.sha256(data).hexdigest()


def test_tar_into_the_container_and_back(openssh, registered, running, tmp_path):
    """`tar c . | ssh host tar x -C dir` needs stdin's end to reach the container."""
    target = running()
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "mod.py").write_bytes(os.urandom(300_000))
    archive = subprocess.run(["tar", "c", "-C", str(source), "."], capture_output=True, check=True).stdout
    put = openssh.ssh(target.ssh_user, "mkdir -p copied && tar x -C copied", input=archive)
    assert put.returncode == 0, put.stderr
    back = openssh.ssh(target.ssh_user, "sha256sum copied/pkg/mod.py")
    assert back.stdout.split()[0].decode() == hashlib.sha256((source / "pkg" / "mod.py").read_bytes()).hexdigest()


async def test_a_shell_gets_a_pty_with_term_and_resizes(gateway, registered, running, key_path):
    target = await sync_to_async(running)()
    async with await connect(gateway, target.ssh_user, str(key_path)) as conn:
        process = await conn.create_process(term_type="xterm-256color", term_size=(80, 24), encoding=None)

        async def until(wanted: bytes) -> bytes:
            seen = b""
            while wanted not in seen:
                chunk = await asyncio.wait_for(process.stdout.read(4096), 15)
                assert chunk, f"the shell ended before {wanted!r}: {seen!r}"
                seen += chunk
            return seen

        process.stdin.write(b"tty; echo TERM=$TERM; stty size\n")
        seen = await until(b"24 80")
        assert b"/dev/pts/" in seen and b"TERM=xterm-256color" in seen
        process.change_terminal_size(120, 40)
        # The resize travels apart from stdin (its own exec channel): ask until the shell sees it.
        deadline = time.monotonic() + 30
        seen = b""
        while b"40 120" not in seen:
            assert time.monotonic() < deadline, f"the shell never saw the resize: {seen!r}"
            process.stdin.write(b'stty size; echo "SIZ""ED"\n')  # the echoed line does not say SIZED
            seen = await until(b"SIZED")
        process.stdin.write(b"exit 7\n")
        assert (await asyncio.wait_for(process.wait(), 15)).exit_status == 7


def test_ssh_L_forwards_to_a_port_of_the_container(openssh, registered, running):
    target = running()
    port = free_port()
    args = openssh.ssh_args(target.ssh_user, "-N", "-o", "ExitOnForwardFailure=yes", "-L", f"{port}:localhost:8000")
    tunnel = subprocess.Popen(args, stderr=subprocess.PIPE)
    try:

        def answer():
            if tunnel.poll() is not None:
                raise RuntimeError(f"ssh -L exited {tunnel.returncode}: {tunnel.stderr.read()!r}")
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/hello", timeout=5).read()

        body = wait_for(answer, timeout=20, what="an HTTP answer through the tunnel")
        assert b"Request: GET /hello" in body
    finally:
        tunnel.terminate()
        tunnel.wait(10)


def test_forwarding_elsewhere_than_the_container_is_refused(openssh, registered, running):
    target = running()
    port = free_port()
    args = openssh.ssh_args(target.ssh_user, "-N", "-L", f"{port}:example.com:80")
    tunnel = subprocess.Popen(args, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _connects(port), timeout=10, what="the local end of the tunnel")
        # The local end accepts; the gateway refuses the channel, so the request gets no answer.
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
    finally:
        tunnel.kill()
        _, stderr = tunnel.communicate(timeout=10)
    assert b"only the container's own ports can be forwarded" in stderr


def _connects(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_sftp_puts_and_gets_a_file(openssh, registered, running, tmp_path):
    target = running()
    local = tmp_path / "up.bin"
    local.write_bytes(os.urandom(1_000_000))
    batch = tmp_path / "batch"
    batch.write_text(f"put {local} up.bin\nget up.bin {tmp_path / 'down.bin'}\nls -l up.bin\n")
    result = subprocess.run(
        ["sftp", "-P", str(openssh.port), *openssh.options(), "-b", str(batch), f"{target.ssh_user}@127.0.0.1"],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "down.bin").read_bytes() == local.read_bytes()
    # It landed in the code directory, where the shell starts too.
    assert openssh.ssh(target.ssh_user, "wc -c < up.bin").stdout.strip() == b"1000000"


def test_scp_copies_both_ways(openssh, registered, running, tmp_path):
    target = running()
    local = tmp_path / "notes.txt"
    local.write_text("notes\n" * 1000)
    remote = f"{target.ssh_user}@127.0.0.1"
    scp = ["scp", "-P", str(openssh.port), *openssh.options()]
    assert subprocess.run([*scp, str(local), f"{remote}:notes.txt"], capture_output=True, timeout=60).returncode == 0
    back = tmp_path / "back.txt"
    result = subprocess.run([*scp, f"{remote}:notes.txt", str(back)], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert back.read_text() == local.read_text()


def test_sftp_and_scp_into_a_container_without_sftp_server_say_so_and_end(openssh, registered, replicated, tmp_path):
    """nextjs-postgres in production runs the user's own image, which no init step gave an sftp-server (in the
    emulator: nothing in the pod's filesystem). Both clients end at once, with the reason on stderr."""
    from deployments.cluster.streams import SFTP_SERVER_PATHS

    remote = f"{replicated.ssh_user}@127.0.0.1"
    batch = tmp_path / "batch"
    batch.write_text("ls\n")
    missing = f"this container has no sftp-server (looked in: {' '.join(SFTP_SERVER_PATHS)}); SFTP and scp need one"
    sftp = ["sftp", "-P", str(openssh.port), *openssh.options(), "-b", str(batch), remote]
    result = subprocess.run(sftp, capture_output=True, timeout=30)  # a hang fails here
    assert result.returncode != 0
    assert missing.encode() in result.stderr
    (tmp_path / "notes.txt").write_text("notes\n")
    scp = ["scp", "-P", str(openssh.port), *openssh.options(), str(tmp_path / "notes.txt"), f"{remote}:notes.txt"]
    result = subprocess.run(scp, capture_output=True, timeout=30)
    assert result.returncode != 0
    assert missing.encode() in result.stderr
    # The same connection's shell still works: only the subsystem is missing.
    assert openssh.ssh(replicated.ssh_user, "echo shell").stdout == b"shell\n"


def test_each_connection_is_a_session_row_with_its_bytes_and_exit(openssh, registered, running, developer):
    target = running()
    result = openssh.ssh(target.ssh_user, "cat; exit 4", input=b"x" * 1000)
    assert result.returncode == 4
    session = wait_for(lambda: SSHSession.objects.filter(ended_at__isnull=False).first(), what="the session ended")
    assert session.user == developer
    assert session.key_fingerprint == registered.fingerprint
    assert (session.deployment_id, session.component) == (target.deployment.pk, target.component)
    assert session.pod == target.ready_pods()[0]
    assert session.source_address == "127.0.0.1"
    assert session.exit_status == 4
    assert session.bytes_in == 1000 and session.bytes_out == 1000


def test_removing_the_key_ends_its_open_session_with_the_reason(openssh, registered, running, developer):
    target = running()
    held = subprocess.Popen(openssh.ssh_args(target.ssh_user) + ["sleep 60"], stderr=subprocess.PIPE)
    session = wait_for(lambda: SSHSession.objects.open().first(), timeout=15, what="the session open")
    ssh_key_remove(user=developer, fingerprint=registered.fingerprint, actor=developer)
    _, stderr = held.communicate(timeout=10)
    assert held.returncode != 0
    session = wait_for(lambda: SSHSession.objects.filter(pk=session.pk, ended_at__isnull=False).first(), what="end")
    assert b"diploi: this session was closed: " in stderr
    assert session.close_reason.encode() in stderr


def test_a_pod_going_away_ends_the_session_with_a_message(openssh, registered, running, emulator):
    from deployments.cluster.connection import get_cluster

    target = running()
    held = subprocess.Popen(openssh.ssh_args(target.ssh_user) + ["sleep 60"], stderr=subprocess.PIPE)
    session = wait_for(lambda: SSHSession.objects.open().first(), timeout=15, what="the session open")
    get_cluster().delete("Pod", session.pod, target.deployment.namespace)
    _, stderr = held.communicate(timeout=20)
    assert held.returncode == 255
    assert f"diploi: the session in pod {session.pod} ended: ".encode() in stderr


async def test_asyncssh_as_a_client_gets_the_exit_status_and_both_streams(gateway, registered, running, key_path):
    target = await sync_to_async(running)()
    async with await connect(gateway, target.ssh_user, str(key_path)) as conn:
        result = await conn.run("printf abc; printf def >&2; exit 9", encoding=None)
    assert (result.exit_status, result.stdout, result.stderr) == (9, b"abc", b"def")


async def test_an_unknown_subsystem_is_refused_with_a_message(gateway, registered, running, key_path):
    target = await sync_to_async(running)()
    async with await connect(gateway, target.ssh_user, str(key_path)) as conn:
        process = await conn.create_process(subsystem="netconf", encoding=None)
        stderr = await asyncio.wait_for(process.stderr.read(), 10)
        await process.wait()
    assert b"diploi: no subsystem 'netconf' here (only sftp)" in stderr
    assert process.exit_status == 255


async def test_asyncssh_forwards_a_connection_to_the_containers_port(gateway, registered, running, key_path):
    target = await sync_to_async(running)()
    async with await connect(gateway, target.ssh_user, str(key_path)) as conn:
        reader, writer = await conn.open_connection("localhost", 8000)
        writer.write(b"GET /via-asyncssh HTTP/1.0\r\n\r\n")
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), 10)
    assert answer.startswith(b"HTTP/1.") and b"Request: GET /via-asyncssh" in answer


async def test_a_port_nobody_serves_closes_the_forwarded_connection(gateway, registered, running, key_path):
    """As with a real cluster, the refusal arrives on the stream's error channel after it opened: EOF."""
    target = await sync_to_async(running)()
    async with await connect(gateway, target.ssh_user, str(key_path)) as conn:
        reader, _ = await conn.open_connection("localhost", 9)
        assert await asyncio.wait_for(reader.read(), 10) == b""
        # The connection itself goes on.
        assert (await conn.run("echo still here", encoding=None)).stdout == b"still here\n"


def test_an_idle_session_is_closed_saying_so(openssh, registered, running, settings):
    settings.SSH_IDLE_TIMEOUT_SECONDS = 1
    target = running()
    result = openssh.ssh(target.ssh_user, "sleep 30", timeout=20)
    assert result.returncode == 255
    assert b"diploi: closed after " in result.stderr and b" s without activity" in result.stderr
