"""Bad clients (garbage, floods of failed sign-ins, huge requests, idlers) get nowhere, and the gateway
keeps serving everyone else. Driven with asyncssh as the client, and raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time

import asyncssh
import pytest
from asgiref.sync import sync_to_async

from deployments.ssh.gateway.server import MAX_COMMAND_BYTES, MAX_TERM_TYPE
from deployments.ssh.hostkey import known_hosts_line

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_thread_connections")]


async def connect(gateway, user: str, key: asyncssh.SSHKey | str, **options) -> asyncssh.SSHClientConnection:
    known = await sync_to_async(known_hosts_line)()
    return await asyncssh.connect(
        "127.0.0.1",
        gateway.port,
        username=user,
        client_keys=[key],
        known_hosts=asyncssh.import_known_hosts(known + "\n"),
        agent_path=None,
        **options,
    )


async def run(gateway, user: str, key, command: str) -> asyncssh.SSHCompletedProcess:
    async with await connect(gateway, user, key) as conn:
        return await asyncio.wait_for(conn.run(command, encoding=None), 30)


def test_garbage_instead_of_ssh_is_dropped_and_others_still_get_in(gateway, openssh, registered, running):
    target = running()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        assert sock.recv(100).startswith(b"SSH-2.0-Diploi")
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00\xff" * 5000)
        sock.settimeout(10)
        with contextlib.suppress(ConnectionResetError):
            while sock.recv(4096):  # until the gateway hangs up (a timeout here fails the test)
                pass
    result = openssh.ssh(target.ssh_user, "true")
    assert result.returncode == 0, result.stderr


async def test_failed_sign_ins_are_limited_per_source_address(start_gateway, settings):
    settings.SSH_AUTH_FAILURES_PER_ADDRESS = 5
    settings.SSH_AUTH_FAILURES_PER_USER = 1000
    gateway = await sync_to_async(start_gateway)()
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    for attempt in range(5):
        with pytest.raises(asyncssh.PermissionDenied):
            await connect(gateway, f"app.dev.guess{attempt}", stranger)
    banners = []

    class Listener(asyncssh.SSHClient):
        def auth_banner_received(self, msg: str, lang: str) -> None:
            banners.append(msg)

    with pytest.raises(asyncssh.PermissionDenied):
        await connect(gateway, "app.dev.other", stranger, client_factory=Listener)
    assert banners and banners[0].startswith("diploi: too many failed sign-ins from 127.0.0.1")


async def test_failed_sign_ins_are_limited_per_user_name(start_gateway, settings):
    settings.SSH_AUTH_FAILURES_PER_ADDRESS = 1000
    settings.SSH_AUTH_FAILURES_PER_USER = 3
    gateway = await sync_to_async(start_gateway)()
    for _ in range(3):
        with pytest.raises(asyncssh.PermissionDenied):
            await connect(gateway, "app.dev.victim", asyncssh.generate_private_key("ssh-ed25519"))
    banners = []

    class Listener(asyncssh.SSHClient):
        def auth_banner_received(self, msg: str, lang: str) -> None:
            banners.append(msg)

    with pytest.raises(asyncssh.PermissionDenied):
        await connect(gateway, "app.dev.victim", asyncssh.generate_private_key("ssh-ed25519"), client_factory=Listener)
    assert "as app.dev.victim" in banners[0]
    # Another name from the same address is not held up.
    banners.clear()
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(gateway, "app.dev.someone", asyncssh.generate_private_key("ssh-ed25519"), client_factory=Listener)
    assert len(banners) == 1 and banners[0].startswith("diploi: no key of yours is registered")


async def test_a_huge_command_is_refused_with_a_message(gateway, registered, running, key_path):
    target = await sync_to_async(running)()
    result = await run(gateway, target.ssh_user, str(key_path), "echo " + "x" * (MAX_COMMAND_BYTES + 1))
    assert result.exit_status != 0
    assert f"diploi: the command is longer than {MAX_COMMAND_BYTES // 1024} KiB".encode() in result.stderr


async def test_a_huge_terminal_type_or_subsystem_name_is_refused_briefly(gateway, registered, running, key_path):
    target = await sync_to_async(running)()
    async with await connect(gateway, target.ssh_user, str(key_path)) as conn:
        shell = await conn.create_process(term_type="x" * 30_000, encoding=None)
        refused = await asyncio.wait_for(shell.wait(), 15)
        subsystem = await conn.create_process(subsystem="y" * 30_000, encoding=None)
        unknown = await asyncio.wait_for(subsystem.wait(), 15)
    assert refused.exit_status == 255
    assert refused.stderr == f"diploi: the terminal type is longer than {MAX_TERM_TYPE} characters\r\n".encode()
    assert unknown.exit_status == 255
    assert unknown.stderr == ("diploi: no subsystem '" + "y" * 64 + "…' here (only sftp)\n").encode()


async def test_channels_per_connection_are_capped(gateway, registered, running, key_path, settings):
    settings.SSH_MAX_CHANNELS_PER_CONNECTION = 2
    target = await sync_to_async(running)()
    async with await connect(gateway, target.ssh_user, str(key_path)) as conn:
        held = [await conn.create_process("sleep 30") for _ in range(2)]
        with pytest.raises(asyncssh.ChannelOpenError, match="at most 2 channels per connection"):
            await conn.create_process("true")
        for process in held:
            process.close()


async def test_an_idle_connection_is_closed(gateway, registered, running, key_path, settings):
    settings.SSH_IDLE_TIMEOUT_SECONDS = 1
    target = await sync_to_async(running)()
    conn = await connect(gateway, target.ssh_user, str(key_path))
    await asyncio.wait_for(conn.wait_closed(), 10)


async def test_a_login_that_never_finishes_is_dropped(start_gateway, settings):
    """A client that opens the TCP connection and then says nothing is cut at the login timeout."""
    settings.SSH_LOGIN_TIMEOUT_SECONDS = 1
    gateway = await sync_to_async(start_gateway)()
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    started = asyncio.get_running_loop().time()
    assert (await reader.readline()).startswith(b"SSH-2.0-Diploi")
    await asyncio.wait_for(reader.read(), 10)  # returns at EOF: the gateway hung up
    assert asyncio.get_running_loop().time() - started >= 0.9
    writer.close()


async def test_a_half_open_connection_is_dropped_by_keepalives(start_gateway, settings, registered, running, key_path):
    """The network between client and gateway goes silent (a proxy stops passing bytes): the gateway's
    keepalives go unanswered, it drops the connection and ends the session row."""
    from deployments.ssh.models import SSHSession

    settings.SSH_KEEPALIVE_SECONDS, settings.SSH_KEEPALIVE_COUNT_MAX = 1, 2
    gateway = await sync_to_async(start_gateway)()
    target = await sync_to_async(running)()
    frozen = asyncio.Event()
    gateway_port = gateway.port

    async def pipe(reader, writer):
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if not frozen.is_set():
                    writer.write(data)
                    await writer.drain()

    async def proxy(client_reader, client_writer):
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", gateway_port)
        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    gateway.port = settings.SSH_PORT = server.sockets[0].getsockname()[1]  # the client goes through the proxy
    try:
        conn = await connect(gateway, target.ssh_user, str(key_path), keepalive_interval=0)
        process = await conn.create_process("sleep 60")
        open_rows = SSHSession.objects.open()
        deadline = time.monotonic() + 30
        while await sync_to_async(open_rows.count)() != 1:
            assert time.monotonic() < deadline, "the session was never recorded open"
            await asyncio.sleep(0.05)
        frozen.set()
        deadline = time.monotonic() + 30
        while await sync_to_async(open_rows.exists)() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        ended = await sync_to_async(SSHSession.objects.get)()
        assert ended.ended_at is not None
        assert "lost" in ended.end_reason
        process.close()
        conn.abort()
    finally:
        server.close()


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


# An asyncssh client in a process of its own (so its buffers are not this process's memory): 3,000 `env`
# requests of 30 KB each (90 MB) on one channel, then a command that prints one line and waits for stdin.
ENV_FLOOD = """
import asyncio, sys, asyncssh
async def main(port, user, key, known):
    async with asyncssh.connect("127.0.0.1", int(port), username=user, client_keys=[key], known_hosts=known,
                                agent_path=None) as conn:
        value = "x" * 30000
        process = await conn.create_process('echo "${FLOOD0:-unset}"; cat',
                                            env={f"FLOOD{n}": value for n in range(3000)})
        print(await process.stdout.readline(), end="", flush=True)
        sys.stdin.readline()
        process.stdin.write_eof()
        print((await process.wait()).exit_status, flush=True)
asyncio.run(main(*sys.argv[1:]))
"""


async def test_a_flood_of_environment_variables_holds_no_memory(gateway, openssh, registered, running, key_path):
    """The gateway (a thread of this process) keeps none of the variables, and the session runs as usual,
    in the pod's environment."""
    target = await sync_to_async(running)()
    before = _rss_mb()
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ENV_FLOOD, str(gateway.port), target.ssh_user, str(key_path), str(openssh.known_hosts),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert await asyncio.wait_for(client.stdout.readline(), 60) == b"unset\n"
        grown = _rss_mb() - before
        client.stdin.write(b"done\n")
        assert await asyncio.wait_for(client.stdout.readline(), 15) == b"0\n"
    finally:
        if client.returncode is None:
            client.kill()
        await client.wait()
    assert grown < 30, f"the gateway's process grew by {grown:.0f} MB"


async def test_a_container_restarting_under_a_session_ends_it_with_a_message(
    gateway, registered, running, key_path, emulator
):
    target = await sync_to_async(running)()
    async with await connect(gateway, target.ssh_user, str(key_path)) as conn:
        process = await conn.create_process("echo started; sleep 60", encoding=None)
        assert await asyncio.wait_for(process.stdout.readline(), 15) == b"started\n"
        (pod,) = await sync_to_async(target.ready_pods)()
        emulator.faults.crash(target.deployment.namespace, containers=[target.component])
        completed = await asyncio.wait_for(process.wait(), 20)
        stderr = completed.stderr
    assert completed.exit_status == 255
    assert f"diploi: the session in pod {pod} ended: ".encode() in stderr
    assert f'container "{target.component}" of pod "{target.deployment.namespace}/{pod}" stopped'.encode() in stderr


async def test_connections_beyond_the_cap_are_turned_away_saying_so(start_gateway, settings, registered, running):
    settings.SSH_MAX_CONNECTIONS = 2
    gateway = await sync_to_async(start_gateway)()
    held = [await asyncio.open_connection("127.0.0.1", gateway.port) for _ in range(2)]
    for reader, _ in held:
        assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"SSH-2.0-Diploi")
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(asyncssh.DisconnectError, match="the SSH gateway is full; try again later"):
        await connect(gateway, "app.dev.shop", stranger)
    held.pop()[1].close()

    async def let_in() -> bool:
        try:
            await connect(gateway, "app.dev.shop", stranger)
        except asyncssh.PermissionDenied:  # past the cap: on to authentication (this key is nobody's)
            return True
        except asyncssh.DisconnectError:
            return False
        raise AssertionError("an unregistered key got in")

    # A place is free again once a connection goes (as soon as the gateway sees it close).
    for _ in range(100):
        if await let_in():
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the freed place was never given")
    for _, writer in held:
        writer.close()
