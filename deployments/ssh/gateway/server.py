"""The SSH gateway: an asyncssh server in front of the deployments' containers.

Three pieces, kept apart: authentication and authorization are `deployments.ssh.access`
(``key_is_registered`` while the client offers keys, ``authorize`` once it proved one);
the audit rows are `deployments.ssh.sessions`; the bytes go through `bridge` (the
Kubernetes exec and port-forward APIs). Database and cluster calls are synchronous
Django code: they run on a small thread pool, never on the event loop.

One SSH connection is one session row and one pod: once the key is proven the
connection is authorized and its pod chosen (while the client opens its first
channel), and every channel (VS Code opens a shell, an SFTP subsystem and many
forwards) goes to that pod; a refusal is told on each channel the client opens.
Every second the gateway asks which of its sessions were asked to close (key removed,
member removed, deployment disabled) and closes those with the reason, and closes
connections idle longer than SSH_IDLE_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import asyncssh
from asyncssh.stream import SSHServerStreamSession, SSHTCPStreamSession
from django.conf import settings
from django.db import close_old_connections, connections

from deployments.cluster import streams
from deployments.ssh import access, hostkey, sessions
from deployments.ssh.gateway import bridge, pods
from deployments.ssh.gateway.limits import FailureLimiter
from diploi_site import metrics

logger = logging.getLogger(__name__)

MAX_COMMAND_BYTES = 16 * 1024
MAX_TERM_TYPE = 128  # TERM goes into the exec request; real terminal types are a few dozen characters
FULL = "the SSH gateway is full; try again later"
# Connections over SSH_MAX_CONNECTIONS are told so once their key exchange is done (a disconnect sent
# before it is lost: the client's version line, unread, turns the close into a reset). At most this many
# wait for that; beyond them a connection is dropped at once.
TURNED_AWAY_MAX = 64
POOL_THREADS = 4
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "ip6-localhost"}  # noqa: S104 - names, not binds


@dataclass(frozen=True)
class Entry:
    """What an authorized connection enters: the target and the chosen pod."""

    target: access.Target
    pod: str
    note: str


class Refused(Exception):
    """The connection may not enter; the message is for the user's stderr."""


class Gateway:
    """The server: listens, tracks its connections, polls for close requests and idle connections."""

    def __init__(self, *, host: str, port: int):
        self.host, self.port = host, port
        self.connections: set[GatewayConnection] = set()
        self.turned_away: set[GatewayConnection] = set()  # over the cap, to be told so
        self.by_address = FailureLimiter(settings.SSH_AUTH_FAILURES_PER_ADDRESS)
        self.by_user = FailureLimiter(settings.SSH_AUTH_FAILURES_PER_USER)
        # Django (database) and the cluster client are synchronous: a few threads for both.
        self._pool = ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="ssh-gateway-db")
        self._server: asyncssh.SSHAcceptor | None = None
        self._poller: asyncio.Task | None = None
        self._closing: set[asyncio.Task] = set()

    async def call(self, fn, /, *args, **kwargs):
        """Run synchronous Django/cluster code on the pool."""

        def run():
            close_old_connections()
            return fn(*args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(run))

    async def start(self) -> Gateway:
        key = await self.call(hostkey.host_key)
        self._server = await asyncssh.create_server(
            lambda: GatewayConnection(self),
            self.host,
            self.port,
            server_host_keys=[key],
            encoding=None,
            line_editor=False,
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
            login_timeout=settings.SSH_LOGIN_TIMEOUT_SECONDS,
            keepalive_interval=settings.SSH_KEEPALIVE_SECONDS,
            keepalive_count_max=settings.SSH_KEEPALIVE_COUNT_MAX,
            server_version="Diploi",
            # The client's preference wins among what we offer (SSH_CIPHERS, settings.py says why).
            encryption_algs=settings.SSH_CIPHERS,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._poller = asyncio.create_task(self._poll_forever())
        logger.info("SSH gateway listening on %s:%s (host key %s)", self.host, self.port, key.get_fingerprint())
        return self

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for connection in list(self.connections):
            connection.end("the gateway is shutting down")
        for connection in list(self.turned_away):
            connection.conn.close()
        # Let the session rows be closed before the pool goes.
        for _ in range(50):
            if not self.connections and not self._closing:
                break
            await asyncio.sleep(0.1)
        await asyncio.get_running_loop().run_in_executor(None, self._close_pool)

    def _close_pool(self) -> None:
        """Close every pool thread's database connection (each thread owns its own), then the pool."""
        barrier = threading.Barrier(POOL_THREADS)

        def close() -> None:
            connections.close_all()
            barrier.wait(timeout=10)  # hold this thread, so each of the others takes one close too

        for future in [self._pool.submit(close) for _ in range(POOL_THREADS)]:
            future.result()
        self._pool.shutdown(wait=True)

    def track(self, task: asyncio.Task) -> None:
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _poll_forever(self) -> None:
        # Also the heartbeat of the sessions held here: rows of a gateway that died go stale,
        # and the watcher's sweeper ends them (`sessions.lost_sessions`).
        while True:
            await asyncio.sleep(1)
            try:
                await self._poll_once()
            except Exception:
                logger.exception("SSH gateway: checking sessions failed; trying again in a second")

    async def _poll_once(self) -> None:
        now = asyncio.get_running_loop().time()
        for connection in list(self.connections):
            idle = now - connection.traffic.last_activity
            if idle > settings.SSH_IDLE_TIMEOUT_SECONDS:
                connection.end(f"closed after {int(idle)} s without activity")
        held = {c.session_id: c for c in self.connections if c.session_id is not None}
        if held:
            for session_id, reason in (await self.call(sessions.sessions_to_close, list(held))).items():
                held[session_id].end(f"this session was closed: {reason}")


class GatewayConnection(asyncssh.SSHServer):
    """One client connection: public-key authentication, then its channels."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.conn: asyncssh.SSHServerConnection | None = None
        self.source = ""
        self.ssh_user = ""
        self.public_key = ""
        self.traffic = bridge.Traffic()
        self.entry: Entry | None = None
        self.session_id: int | None = None
        self._key_checks: dict[str, bool] = {}
        self.exit_status: int | None = None
        self.close_reason = ""
        self.channels = 0
        self._entering: asyncio.Task | None = None
        self._limited = False
        self._lost = False
        self._told_unregistered = False
        self.sessions: set[GatewaySession] = set()
        self._ending: asyncio.Task | None = None

    # --- connection ------------------------------------------------------------------
    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername") or ("", 0)
        self.source = str(peer[0])
        if len(self.gateway.connections) >= settings.SSH_MAX_CONNECTIONS:
            if len(self.gateway.turned_away) >= TURNED_AWAY_MAX:
                conn.disconnect(asyncssh.DISC_TOO_MANY_CONNECTIONS, FULL)
            else:
                self.gateway.turned_away.add(self)  # told in begin_auth; the login timeout bounds its wait
            return
        self.gateway.connections.add(self)
        metrics.SSH_CONNECTIONS.inc()
        _ack_at_once(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gateway.turned_away.discard(self)
        if self not in self.gateway.connections:
            return
        self.gateway.connections.discard(self)
        metrics.SSH_CONNECTIONS.dec()
        self._lost = True
        if not self.close_reason and exc is not None:
            self.close_reason = f"the connection was lost ({bridge._reason(exc)})"
        # A row still being opened is closed by `_open_row` once it has its id.
        if self.session_id is not None:
            self._close_row()

    def _close_row(self) -> None:
        assert self.session_id is not None
        self.gateway.track(
            asyncio.ensure_future(
                self.gateway.call(
                    sessions.session_close,
                    session_id=self.session_id,
                    exit_status=self.exit_status,
                    bytes_in=self.traffic.bytes_in,
                    bytes_out=self.traffic.bytes_out,
                    reason=self.close_reason,
                )
            )
        )

    def end(self, reason: str) -> None:
        """Close the connection, ending each session channel with ``reason`` on its stderr first. Idempotent."""
        if self._ending is not None or self.conn is None:
            return
        self.close_reason = reason
        for session in list(self.sessions):
            session.abort(reason)
        self._ending = asyncio.ensure_future(self._close_after_sessions())

    async def _close_after_sessions(self) -> None:
        # Give the sessions a moment to send their message and exit status, so the client shows them.
        for _ in range(20):
            if not self.sessions:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
        self.conn.close()

    # --- authentication -----------------------------------------------------------------
    def begin_auth(self, username: str) -> bool:
        if self in self.gateway.turned_away:
            self.conn.disconnect(asyncssh.DISC_TOO_MANY_CONNECTIONS, FULL)
            return True
        self.ssh_user = username
        wait = max(self.gateway.by_address.retry_after(self.source), self.gateway.by_user.retry_after(username))
        if wait:
            self._limited = True
            metrics.SSH_AUTH_REFUSALS.labels("rate_limited").inc()
            self._banner(
                f"too many failed sign-ins from {self.source} or as {username}; try again in {math.ceil(wait)} s"
            )
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        if self._limited:
            return False
        line = key.export_public_key("openssh").decode().strip()
        # Asked twice per key (the client's query, then its signed request): look it up once.
        if line not in self._key_checks:
            self._key_checks[line] = await self.gateway.call(access.key_is_registered, line)
        if self._key_checks[line]:
            self.public_key = line
            return True
        # Refused here, so the client can offer its next key; said once, in case none is ours.
        self._failed()
        metrics.SSH_AUTH_REFUSALS.labels("unregistered").inc()
        if not self._told_unregistered:
            self._told_unregistered = True
            self._banner(
                f"no key of yours is registered (this one is {key.get_fingerprint('sha256')}); "
                "add your public key on your profile page in Diploi"
            )
        return False

    def _banner(self, message: str) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.send_auth_banner(f"diploi: {message}\r\n")

    def _failed(self) -> None:
        self.gateway.by_address.failed(self.source)
        self.gateway.by_user.failed(self.ssh_user)

    def auth_completed(self) -> None:
        # Authorize now, while the client opens its first channel (saves that round trip's time).
        self._start_entering()

    # --- what the connection enters -----------------------------------------------------------
    def _start_entering(self) -> asyncio.Task:
        if self._entering is None:
            self._entering = asyncio.ensure_future(self._enter())
            # A refusal nobody asks for (no channel opened) is not an unretrieved error.
            self._entering.add_done_callback(lambda task: task.cancelled() or task.exception())
        return self._entering

    async def enter(self) -> Entry:
        """Authorize once per connection and choose the pod (the session row opens alongside). Raises Refused."""
        return await asyncio.shield(self._start_entering())

    async def _enter(self) -> Entry:
        decision = await self.gateway.call(access.authorize, ssh_user=self.ssh_user, public_key=self.public_key)
        if isinstance(decision, access.Refusal):
            self._failed()
            metrics.SSH_AUTH_REFUSALS.labels("refused").inc()
            raise Refused(decision.message)
        target = decision
        try:
            choice = await self.gateway.call(
                pods.choose_for,
                namespace=target.namespace,
                selector=target.pod_selector,
                component=target.component,
                replica=target.replica,
            )
        except pods.NoPod as error:
            raise Refused(str(error)) from error
        # The row is written while the session starts in the container, not before.
        self.gateway.track(asyncio.ensure_future(self._open_row(target, choice.pod)))
        note = ""
        if len(choice.ready) > 1 and target.replica is None:
            others = ", ".join(pods.replica_name(name) for name in choice.ready if name != choice.pod)
            note = (
                f"{target.component} has {len(choice.ready)} ready replicas; you are in {choice.pod} "
                f"(another: put its name first, e.g. {pods.replica_name(choice.ready[-1])}.{self.ssh_user}; "
                f"others: {others})"
            )
        self.entry = Entry(target=target, pod=choice.pod, note=note)
        return self.entry

    async def _open_row(self, target: access.Target, pod: str) -> None:
        self.session_id = await self.gateway.call(
            sessions.session_open, target=target, pod=pod, source_address=self.source
        )
        if self._lost:
            # The client left meanwhile: the row still gets its end.
            self._close_row()

    # --- channels -----------------------------------------------------------------------
    def _channel_opened(self) -> bool:
        if self.channels >= settings.SSH_MAX_CHANNELS_PER_CONNECTION:
            return False
        self.channels += 1
        self.traffic.moved()
        return True

    def channel_closed(self) -> None:
        self.channels -= 1

    def session_requested(self):
        if not self._channel_opened():
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_RESOURCE_SHORTAGE,
                f"at most {settings.SSH_MAX_CHANNELS_PER_CONNECTION} channels per connection",
            )
        chan = self.conn.create_server_channel(encoding=None)
        _forget_environment(chan)
        return chan, GatewaySession(self)

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int):
        """`ssh -L`: a port of the container itself, through the port-forward API."""
        if dest_host.lower() not in LOCAL_HOSTS:
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                f"only the container's own ports can be forwarded (localhost:PORT), not {dest_host}",
            )
        if not self._channel_opened():
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_RESOURCE_SHORTAGE, "too many channels on this connection")
        # asyncssh awaits this coroutine for the channel's session; a ChannelOpenError it raises refuses the open.
        return self._forward(dest_port)

    async def _forward(self, port: int) -> SSHTCPStreamSession:
        try:
            entry = await self.enter()
            forward = await streams.portforward_open(namespace=entry.target.namespace, pod=entry.pod, port=port)
            if forward.failure:
                raise RuntimeError(forward.failure)
        except Refused as refusal:
            self.channel_closed()
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, str(refusal)) from None
        except Exception as error:  # noqa: BLE001 - the API's refusal is the answer
            self.channel_closed()
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_CONNECT_FAILED, f"cannot forward to port {port}: {bridge._reason(error)}"
            ) from None

        async def relay(reader: asyncssh.SSHReader, writer: asyncssh.SSHWriter) -> None:
            await bridge.run_forward(
                reader=reader, writer=writer, forward=forward, traffic=self.traffic, on_end=self.channel_closed
            )

        return SSHTCPStreamSession(relay)


def _ack_at_once(conn: asyncssh.SSHServerConnection) -> None:
    """Acknowledge every segment at once instead of Linux's delayed ACK (up to 40 ms).

    OpenSSH's client sets TCP_NODELAY only for interactive sessions, so during the handshake it
    writes two small packets in a row and Nagle holds the second until our ACK: two stalls of
    about 40 ms per connection (`ssh host true` took ~85 ms against asyncssh, ~18 ms with this).
    Linux leaves quick-ACK mode on its own, so it is set again after every read.
    """
    sock = conn.get_extra_info("socket")
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or quickack is None:
        return

    def set_quickack() -> None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)

    received = conn.data_received

    def data_received(data: bytes, datatype=None) -> None:
        set_quickack()
        received(data, datatype)

    set_quickack()
    conn.data_received = data_received  # the transport calls the protocol's data_received for each read


def _forget_environment(chan: asyncssh.SSHServerChannel) -> None:
    """Take the client's `env` requests without keeping them.

    asyncssh keeps every variable a channel is sent, without a bound: a client could send
    thousands of 32 KiB requests and hold the gateway's memory. The container gets none of
    them anyway (its environment is the pod's), so each is read and dropped; the request is
    answered as asyncssh answers it (OpenSSH's `SendEnv` asks for no reply).
    """

    def take_env(packet) -> bool:
        packet.get_string()
        packet.get_string()
        packet.check_end()
        return True

    # asyncssh finds a channel request's handler by name on the channel (`_process_<name>_request`).
    chan._process_env_request = take_env


class GatewaySession(SSHServerStreamSession):
    """A session channel: a shell, a command or the SFTP subsystem, each run in the container."""

    def __init__(self, connection: GatewayConnection):
        super().__init__(self._run)
        self.connection = connection
        self._refusal = ""
        self._abort_reason = ""
        self._task: asyncio.Task | None = None
        self._stderr: asyncssh.SSHWriter | None = None

    def exec_requested(self, command: str) -> bool:
        if len(command.encode()) > MAX_COMMAND_BYTES:
            self._refusal = f"the command is longer than {MAX_COMMAND_BYTES // 1024} KiB"
        return True

    def pty_requested(self, term_type: str, term_size, term_modes) -> bool:
        if len(term_type) > MAX_TERM_TYPE:
            self._refusal = f"the terminal type is longer than {MAX_TERM_TYPE} characters"
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        if subsystem != "sftp":
            shown = subsystem if len(subsystem) <= 64 else subsystem[:64] + "…"
            self._refusal = f"no subsystem {shown!r} here (only sftp)"
        return True

    def session_started(self) -> None:
        chan = self._chan
        stdin = asyncssh.SSHReader(self, chan)
        stdout = asyncssh.SSHWriter(self, chan)
        stderr = asyncssh.SSHWriter(self, chan, asyncssh.EXTENDED_DATA_STDERR)
        self._stderr = stderr
        self._task = self._conn.create_task(self._run(stdin, stdout, stderr), stdin.logger)

    def abort(self, reason: str) -> None:
        """End this session now (the gateway closes the connection): ``reason`` on stderr, exit status 255."""
        self._abort_reason = reason
        if self._stderr is not None:
            # Said and ended at once: the exec's own teardown (closing its stream to the API server)
            # may take longer than the gateway waits before it closes the connection.
            bridge.say(self._stderr, reason, tty=self._chan.get_terminal_type() is not None)
            with contextlib.suppress(Exception):
                self._chan.exit(bridge.GATEWAY_EXIT)
        if self._task is not None:
            self._task.cancel()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.connection.channel_closed()

    async def _run(self, stdin: asyncssh.SSHReader, stdout: asyncssh.SSHWriter, stderr: asyncssh.SSHWriter) -> None:
        chan = self._chan
        tty = chan.get_terminal_type() is not None
        status = bridge.GATEWAY_EXIT
        self.connection.sessions.add(self)
        try:
            status = await self._session(chan, stdin, stdout, stderr, tty)
        except Refused as refusal:
            bridge.say(stderr, str(refusal), tty=tty)
        except asyncio.CancelledError:
            if not self._abort_reason:
                raise
            # `abort` said why already.
        except Exception:
            logger.exception("SSH session failed")
            bridge.say(stderr, "the gateway failed to run this session (logged)", tty=tty)
        finally:
            self.connection.sessions.discard(self)
            self.connection.exit_status = status
            with contextlib.suppress(Exception):
                chan.exit(status)

    async def _session(self, chan, stdin, stdout, stderr, tty: bool) -> int:
        if self._refusal:
            raise Refused(self._refusal)
        entry = await self.connection.enter()
        if entry.note:
            bridge.say(stderr, entry.note, tty=tty)
        workdir, term = entry.target.workdir, chan.get_terminal_type() or ""
        if chan.get_subsystem() == "sftp":
            command = bridge.container_command(kind="sftp", workdir=workdir)
        elif chan.get_command() is not None:
            command = bridge.container_command(kind="command", workdir=workdir, term=term, command=chan.get_command())
        else:
            command = bridge.container_command(kind="shell", workdir=workdir, term=term)
        width, height, _, _ = chan.get_terminal_size()
        return await bridge.run_exec(
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            namespace=entry.target.namespace,
            pod=entry.pod,
            container=entry.target.container,
            command=command,
            tty=tty,
            size=(width, height) if tty and width and height else None,
            traffic=self.connection.traffic,
        )


class GatewayThread:
    """The gateway on a thread with its own event loop (standalone mode)."""

    def __init__(self, *, host: str, port: int):
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="ssh-gateway", daemon=True)

    def start(self, timeout: float = 30) -> GatewayThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the SSH gateway did not start")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout: float = 15) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        try:
            gateway = await Gateway(host=self.host, port=self.port).start()
        except BaseException as error:  # noqa: BLE001 - handed to the starting thread
            self._error = error
            self._ready.set()
            return
        self.port = gateway.port
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            await gateway.stop()
