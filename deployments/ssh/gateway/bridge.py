"""The bridge: an SSH channel's bytes to and from a container, through the Kubernetes stream APIs.

It knows only `deployments.cluster.streams` (exec and port-forward) and the asyncssh
channel streams; who may open what was settled before it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncssh
from asyncssh.misc import SoftEOFReceived

from deployments.cluster import streams

logger = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
# Exit status of a session the gateway ended itself (as OpenSSH's client uses 255 for its own errors).
GATEWAY_EXIT = 255

# What runs in the container, started in the component's code directory (`streams.command_in`). The
# user's command goes in as an argument, never into the script, so nothing in it is quoted or
# interpreted twice; TERM comes from the PTY request.
SHELL = '[ -n "$1" ] && export TERM="$1"; if command -v bash >/dev/null 2>&1; then exec bash -l; fi; exec sh -l'
COMMAND = '[ -n "$1" ] && export TERM="$1"; eval "$2"'


def container_command(*, kind: str, workdir: str, term: str = "", command: str = "") -> list[str]:
    """The exec command for a shell, a command, or the SFTP subsystem (pure)."""
    if kind == "shell":
        inner = ["sh", "-c", SHELL, "diploi-shell", term]
    elif kind == "command":
        inner = ["sh", "-c", COMMAND, "diploi-command", term, command]
    elif kind == "sftp":
        inner = streams.sftp_server_command()
    else:
        raise ValueError(f"unknown session kind {kind!r}")
    return streams.command_in(workdir, inner)


@dataclass
class Traffic:
    """Bytes each way over one SSH connection, and when anything last moved (for the idle timeout)."""

    bytes_in: int = 0
    bytes_out: int = 0
    last_activity: float = field(default_factory=lambda: asyncio.get_running_loop().time())

    def moved(self, *, into: int = 0, out: int = 0) -> None:
        self.bytes_in += into
        self.bytes_out += out
        self.last_activity = asyncio.get_running_loop().time()


def say(writer: asyncssh.SSHWriter, message: str, *, tty: bool) -> None:
    """One line from the gateway on the client's stderr (CR LF on a terminal)."""
    end = "\r\n" if tty else "\n"
    with contextlib.suppress(Exception):  # the channel may be closing already
        writer.write(f"diploi: {message}{end}".encode())


async def run_exec(
    *,
    stdin: asyncssh.SSHReader,
    stdout: asyncssh.SSHWriter,
    stderr: asyncssh.SSHWriter,
    namespace: str,
    pod: str,
    container: str,
    command: list[str],
    tty: bool,
    size: tuple[int, int] | None,
    traffic: Traffic,
) -> int:
    """Run ``command`` in the container with the channel's streams attached; return its exit status.

    stdin flows until the client's EOF, which closes the container's stdin (so `tar x`, `cat`, `git`
    see their end); stdout and stderr stay apart; window changes become resizes. When the stream
    ends without an exit status (the pod went away, the API refused), the reason goes to stderr.
    """
    width, height = size if size else (None, None)
    try:
        stream = await streams.exec_open(
            namespace=namespace, pod=pod, container=container, command=command, tty=tty, width=width, height=height
        )
    except Exception as error:  # noqa: BLE001 - any refusal of the API is the user's answer
        say(stderr, f"cannot start in pod {pod}: {_reason(error)}", tty=tty)
        return GATEWAY_EXIT
    if stream.ended and stream.failure:  # the API server refused (no such pod, not running, forbidden)
        say(stderr, f"cannot start in pod {pod}: {stream.failure}", tty=tty)
        return GATEWAY_EXIT
    pump_in = asyncio.create_task(_client_to_container(stdin, stream, traffic))
    try:
        await _container_to_client(stream, stdout, stderr, traffic)
    finally:
        pump_in.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump_in
        with contextlib.suppress(Exception):
            await stream.close()
    if stream.exit_status is not None:
        return stream.exit_status
    reason = stream.failure or "the connection to the container was lost"
    say(stderr, f"the session in pod {pod} ended: {reason}", tty=tty)
    return GATEWAY_EXIT


async def _client_to_container(stdin: asyncssh.SSHReader, stream, traffic: Traffic) -> None:
    while True:
        try:
            data = await stdin.read(READ_SIZE)
        except asyncssh.TerminalSizeChanged as change:
            if change.width and change.height:
                await stream.resize(change.width, change.height)
            continue
        except (asyncssh.BreakReceived, asyncssh.SignalReceived, SoftEOFReceived):
            continue
        if not data:
            await stream.close_stdin()
            return
        traffic.moved(into=len(data))
        await stream.write_stdin(data)


async def _container_to_client(stream, stdout: asyncssh.SSHWriter, stderr: asyncssh.SSHWriter, traffic) -> None:
    while True:
        item = await stream.read()
        if item is None:
            return
        channel, data = item
        traffic.moved(out=len(data))
        writer = stderr if channel == 2 else stdout
        writer.write(data)
        # Back-pressure: wait while the client has not taken what we sent (the SSH window is full).
        await writer.drain()


async def run_forward(
    *, reader: asyncssh.SSHReader, writer: asyncssh.SSHWriter, forward, traffic: Traffic, on_end: Callable[[], None]
) -> None:
    """Relay a direct-tcpip channel and a port-forward stream both ways until either side ends."""

    async def up() -> None:
        while data := await reader.read(READ_SIZE):
            traffic.moved(into=len(data))
            await forward.write(data)

    async def down() -> None:
        while data := await forward.read():
            traffic.moved(out=len(data))
            writer.write(data)
            await writer.drain()

    tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if tasks[0] in done and not tasks[0].exception():
            # The client sent EOF: let the reply finish coming back.
            with contextlib.suppress(Exception):
                await tasks[1]
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await forward.close()
        with contextlib.suppress(Exception):
            writer.close()
        on_end()


def _reason(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]
