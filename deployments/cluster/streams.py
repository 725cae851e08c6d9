"""Streams into pods: exec and port-forward over the API server's websocket protocols (asyncio).

`exec_open` speaks `v5.channel.k8s.io` (falling back to `v4.channel.k8s.io` on servers
before Kubernetes 1.30): each message is a channel byte then data; 0 stdin, 1 stdout,
2 stderr, 3 the closing `Status`, 4 terminal size, and on v5 `[255, 0]` closes stdin (what
`scp`, `tar` and `git` over SSH need to see end-of-file). On v4 stdin cannot be closed:
`close_stdin` then does nothing (`can_close_stdin` is False) and the command sees
end-of-file only when the stream closes.

`portforward_open` speaks `v4.channel.k8s.io` on `pods/{name}/portforward?ports=N`: a data
channel (0) and an error channel (1), each opened by a message carrying the port
(2 bytes, little-endian).

Both connect with the same settings as the official client of `Cluster` (host, CA,
bearer token or client certificate, user agent), so they work against a real API server
and against the emulator. Memory is bounded: at most `_MAX_QUEUE` received messages of
at most `_MAX_MESSAGE` bytes wait for the reader (beyond that the socket is not read,
and TCP slows the sender down), and writes wait while more than `_WRITE_LIMIT` bytes are
unsent. Keep-alive pings go every 20 s (idle sessions survive load balancers' idle
timeouts); a server that answers none for 20 s, a dead one or one stalled that long by
back-pressure, ends the stream.

A request the API server refuses (no such pod, container not running, forbidden) does not
raise: the stream comes back already ended, with `failure` set to the server's message.
An unreachable server raises `ClusterUnavailable`; no cluster configured raises
`ClusterNotConfigured`.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from deployments.cluster import errors
from deployments.cluster.connection import get_cluster

logger = logging.getLogger(__name__)

STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
_MAX_MESSAGE = 1024 * 1024
_MAX_QUEUE = 16
_WRITE_LIMIT = 64 * 1024
_STDIN_CHUNK = 32 * 1024
_OPEN_TIMEOUT = 15.0
# Closing waits this long at most for the server's side of the close handshake (it ends the command
# first): nothing more is read once we close, and a caller (a download, a session ending) should not wait.
_CLOSE_TIMEOUT = 1.0
# A dead API server is noticed by TCP keepalive, not websocket pings: a ping's pong
# waits behind unread frames, so a reader that pauses (a suspended terminal, a slow
# scp) would otherwise lose its session after ping_timeout.
_KEEPALIVE = {"TCP_KEEPIDLE": 30, "TCP_KEEPINTVL": 10, "TCP_KEEPCNT": 3}

# Where images keep OpenSSH's sftp-server: Debian/Ubuntu (openssh-sftp-server), Alpine, Fedora/RHEL, others.
SFTP_SERVER_PATHS = (
    "/opt/diploi/bin/sftp-server",  # put there by the init step of components with provide_sftp_server
    "/usr/lib/openssh/sftp-server",
    "/usr/lib/ssh/sftp-server",
    "/usr/libexec/openssh/sftp-server",
    "/usr/libexec/sftp-server",
    "/usr/lib/sftp-server",
)
NO_SFTP_SERVER_EXIT = 127


def command_in(workdir: str, command: list[str]) -> list[str]:
    """`command` started in `workdir` (a path in the container; "" keeps the container's own directory).

    In the cluster emulator a pod's paths live under `$DIPLOI_EMULATED_ROOT` on the emulator's machine,
    so the directory is tried there first; a missing directory is not an error (the command starts where
    the container starts)."""
    script = 'if [ -n "$0" ]; then cd "${DIPLOI_EMULATED_ROOT:-}$0" 2>/dev/null || cd "$0" 2>/dev/null; fi; exec "$@"'
    return ["sh", "-c", script, workdir, *command]


def sftp_server_command(paths: tuple[str, ...] = SFTP_SERVER_PATHS) -> list[str]:
    """The exec command that runs the container's own sftp-server (binary stdin/stdout, no tty), or says
    on stderr that the image has none and exits 127. For SFTP and `scp` (which speaks SFTP) over SSH.

    The paths are the container's: in the cluster emulator, under `$DIPLOI_EMULATED_ROOT` (the pod's
    filesystem), never this machine's own, so an emulated container has an sftp-server only where its
    pod put one (Diploi's sftp-server init step, see `manifests.SFTP_SCRIPT`), as a real image would."""
    script = (
        'for p in "$@"; do p="${DIPLOI_EMULATED_ROOT:-}$p"; if [ -x "$p" ]; then exec "$p"; fi; done; '
        "command -v sftp-server >/dev/null 2>&1 && exec sftp-server; "
        'echo "this container has no sftp-server (looked in: $*); SFTP and scp need one in the image '
        '(Debian: apt-get install openssh-sftp-server)" >&2; '
        f"exit {NO_SFTP_SERVER_EXIT}"
    )
    return ["sh", "-c", script, "sftp-server", *paths]


class ExecStream:
    """A command running in a container. Read with `read()` until it returns None, then look at
    `exit_status` (the command's exit code) or `failure` (why there is none)."""

    def __init__(self, ws: ClientConnection | None, protocol: str, *, failure: str | None = None):
        self._ws = ws
        self.protocol = protocol
        self.exit_status: int | None = None
        self.failure: str | None = failure
        self._ended = ws is None
        self._stdin_closed = False

    @property
    def can_close_stdin(self) -> bool:
        return self.protocol == V5

    @property
    def ended(self) -> bool:
        return self._ended

    async def write_stdin(self, data: bytes) -> None:
        """Send to the command's stdin (waits while the connection's send buffer is full)."""
        if self._ended or self._stdin_closed or not data:
            return
        try:
            for start in range(0, len(data), _STDIN_CHUNK):
                await self._ws.send(bytes((STDIN,)) + data[start : start + _STDIN_CHUNK])
        except ConnectionClosed:
            self._end_without_status()

    async def close_stdin(self) -> None:
        """End-of-file on the command's stdin (v5; on v4 a no-op, see the module docstring)."""
        if self._ended or self._stdin_closed:
            return
        self._stdin_closed = True
        if not self.can_close_stdin:
            logger.debug("exec over %s cannot close stdin; it stays open until the stream ends", self.protocol)
            return
        try:
            await self._ws.send(bytes((CLOSE, STDIN)))
        except ConnectionClosed:
            self._end_without_status()

    async def resize(self, width: int, height: int) -> None:
        """The terminal's new size (columns, rows); only meaningful with tty=True."""
        if self._ended or width <= 0 or height <= 0:
            return
        try:
            await self._ws.send(bytes((RESIZE,)) + json.dumps({"Width": width, "Height": height}).encode())
        except ConnectionClosed:
            self._end_without_status()

    async def read(self) -> tuple[int, bytes] | None:
        """The next output as (1 stdout | 2 stderr, data); None once the stream has ended."""
        while not self._ended:
            try:
                message = await self._ws.recv()
            except ConnectionClosed:
                self._end_without_status()
                return None
            if isinstance(message, str):
                message = message.encode()
            if not message:
                continue
            channel, data = message[0], message[1:]
            if channel in (STDOUT, STDERR):
                if data:
                    return channel, data
            elif channel == STATUS:
                self._take_status(data)
        return None

    async def close(self) -> None:
        """Close the stream (the API server then ends the command). Idempotent."""
        self._ended = True
        if self._ws is not None:
            await self._ws.close()

    def _take_status(self, data: bytes) -> None:
        """The channel-3 Status: Success is exit 0; NonZeroExitCode carries the code; others are failures."""
        try:
            status = json.loads(data)
        except ValueError:
            self.failure = f"the API server sent an unreadable exec status: {data[:200]!r}"
            return
        if status.get("status") == "Success":
            self.exit_status = 0
            return
        if status.get("reason") == "NonZeroExitCode":
            for cause in (status.get("details") or {}).get("causes") or ():
                if cause.get("reason") == "ExitCode":
                    try:
                        self.exit_status = int(cause.get("message", ""))
                        return
                    except ValueError:
                        break
        self.failure = status.get("message") or "the command failed without a message"

    def _end_without_status(self) -> None:
        self._ended = True
        if self.exit_status is None and self.failure is None:
            reason = ""
            if self._ws is not None and self._ws.close_code is not None:
                reason = f" (websocket close {self._ws.close_code} {self._ws.close_reason or ''})".replace(" )", ")")
            self.failure = f"the connection to the cluster closed before the command ended{reason}"


class PortForward:
    """One TCP connection to a port of a pod. `read()` returns b"" at the end; then `failure` says
    why, if the cluster reported an error (nothing listening, pod gone)."""

    def __init__(self, ws: ClientConnection | None, port: int, *, failure: str | None = None):
        self._ws = ws
        self.port = port
        self.failure: str | None = failure
        self._ended = ws is None
        self._opened: set[int] = set()  # channels whose port-number message has arrived
        self._error = bytearray()

    async def read(self) -> bytes:
        """The next bytes from the pod's port; b"" at EOF."""
        while not self._ended:
            try:
                message = await self._ws.recv()
            except ConnectionClosed:
                self._finish()
                return b""
            if isinstance(message, str):
                message = message.encode()
            if not message:
                continue
            channel, data = message[0], message[1:]
            if channel not in self._opened:
                # The first message of each channel is its port number; nothing else.
                self._opened.add(channel)
                continue
            if channel == 0:
                if data:
                    return data
            elif channel == 1:
                self._error += data[: 4096 - len(self._error)]
                self.failure = self._error.decode(errors="replace")
        return b""

    async def write(self, data: bytes) -> None:
        """Send to the pod's port (waits while the send buffer is full)."""
        if self._ended or not data:
            return
        try:
            for start in range(0, len(data), _STDIN_CHUNK):
                await self._ws.send(b"\x00" + data[start : start + _STDIN_CHUNK])
        except ConnectionClosed:
            self._finish()

    async def close(self) -> None:
        self._ended = True
        if self._ws is not None:
            await self._ws.close()

    def _finish(self) -> None:
        self._ended = True
        if self._error and self.failure is None:
            self.failure = self._error.decode(errors="replace")


async def exec_open(
    *,
    namespace: str,
    pod: str,
    container: str,
    command: list[str],
    tty: bool,
    stdin: bool = True,
    width: int | None = None,
    height: int | None = None,
) -> ExecStream:
    """Start `command` in a container of a pod (the API's `pods/exec`). Not idempotent: each call runs it.

    With `tty`, stderr is the terminal (the server merges it into stdout) and `width`/`height`,
    when given, are sent as the first resize."""
    if not command:
        raise ValueError("exec needs a command")
    query = [("container", container), ("stdin", _flag(stdin)), ("stdout", "true"), ("tty", _flag(tty))]
    query.append(("stderr", _flag(not tty)))
    query += [("command", part) for part in command]
    ws, protocol, failure = await _open(namespace, pod, "exec", query, (V5, V4))
    stream = ExecStream(ws, protocol, failure=failure)
    if ws is not None and tty and width and height:
        await stream.resize(width, height)
    return stream


async def portforward_open(*, namespace: str, pod: str, port: int) -> PortForward:
    """Open one TCP connection to `port` of a pod (the API's `pods/portforward`)."""
    if not 0 < port < 65536:
        raise ValueError(f"not a TCP port: {port}")
    ws, _protocol, failure = await _open(namespace, pod, "portforward", [("ports", str(port))], (V4,))
    return PortForward(ws, port, failure=failure)


def _flag(value: bool) -> str:
    return "true" if value else "false"


async def _open(
    namespace: str, pod: str, subresource: str, query: list[tuple[str, str]], protocols: tuple[str, ...]
) -> tuple[ClientConnection | None, str, str | None]:
    cluster = get_cluster()
    configuration = cluster.api.configuration
    url = _websocket_url(configuration.host, namespace, pod, subresource, query)
    headers = {}
    token = configuration.get_api_key_with_prefix("authorization") or configuration.get_api_key_with_prefix(
        "BearerToken"
    )
    if token:
        headers["Authorization"] = token
    extra = {}
    if url.startswith("wss:") and getattr(configuration, "tls_server_name", None):
        extra["server_hostname"] = configuration.tls_server_name
    try:
        ws = await connect(
            url,
            subprotocols=list(protocols),
            additional_headers=headers,
            user_agent_header=cluster.api.user_agent,
            ssl=_ssl_context(configuration) if url.startswith("wss:") else None,
            proxy=configuration.proxy or None,
            compression=None,
            open_timeout=_OPEN_TIMEOUT,
            close_timeout=_CLOSE_TIMEOUT,
            ping_interval=None,
            max_size=_MAX_MESSAGE,
            max_queue=_MAX_QUEUE,
            write_limit=_WRITE_LIMIT,
            **extra,
        )
    except InvalidStatus as exc:
        return None, "", _refusal(exc)
    except (TimeoutError, OSError, InvalidHandshake) as exc:
        raise errors.ClusterUnavailable(f"cannot open {subresource} on pod {namespace}/{pod}: {exc}") from exc
    _keep_alive(ws)
    return ws, ws.subprotocol or "", None


def _keep_alive(ws: ClientConnection) -> None:
    sock = ws.transport.get_extra_info("socket")
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in _KEEPALIVE.items():
        if hasattr(socket, name):  # Linux names; other systems keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def _websocket_url(host: str, namespace: str, pod: str, subresource: str, query: list[tuple[str, str]]) -> str:
    parts = urlsplit(host)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = (
        f"{parts.path.rstrip('/')}/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}/"
        f"{subresource}"
    )
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


def _ssl_context(configuration) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _refusal(exc: InvalidStatus) -> str:
    """The Status message of a refused upgrade (404 no such pod, 400 not running, 403 forbidden)."""
    response = exc.response
    try:
        status = json.loads(response.body or b"")
        message = status.get("message")
    except (ValueError, AttributeError):
        message = None
    return message or f"the API server refused the stream: HTTP {response.status_code}"
