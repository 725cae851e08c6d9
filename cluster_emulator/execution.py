"""`pods/{name}/exec` for real: the command runs on this machine, in the pod's directory.

One `ExecSession` per websocket, speaking the channel protocol of the API server
(`v5.channel.k8s.io`, or `v4.channel.k8s.io` without stdin close): every message is one
channel byte then data. 0 stdin, 1 stdout, 2 stderr, 3 the closing `Status`, 4 resize
(`{"Width": w, "Height": h}`), and on v5 255 to close a channel (`[255, 0]` closes stdin).

Threads: the request's thread reads the websocket (stdin, resize, close) and writes to
the process, so a process that does not read stops the client (TCP back-pressure);
one thread per output stream reads the process and sends (a client that does not read
stops the process the same way); a waiter sends the Status when the process is done.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading

from .podfs import ContainerView
from .websocket import Closed, WebSocket

log = logging.getLogger(__name__)

STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
_CHUNK = 32 * 1024
_DRAIN_AFTER_EXIT = 1.0  # a pty whose background jobs keep it open is drained this long
HANGUP_GRACE_SECONDS = 1.0  # after the client left: a command still running this long after SIGHUP is killed
_SETSID = shutil.which("setsid")
# Without util-linux's setsid: a tiny Python trampoline making the pty the controlling terminal.
_CTTY_TRAMPOLINE = (
    "import os,sys,fcntl,termios;os.setsid();fcntl.ioctl(0,termios.TIOCSCTTY,0);os.execvp(sys.argv[1],sys.argv[1:])"
)


def success_status() -> dict:
    return {"metadata": {}, "status": "Success"}


def exit_status(command: list[str], code: int) -> dict:
    """The Status a real kubelet (containerd) sends for a non-zero exit."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            f"command terminated with non-zero exit code: error executing command [{' '.join(command)}], "
            f"exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def internal_error(message: str) -> dict:
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {message}",
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


class ExecSession:
    """One exec: a process and the websocket it talks through."""

    def __init__(
        self,
        ws: WebSocket,
        protocol: str,
        view: ContainerView,
        command: list[str],
        *,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        tty: bool,
        pod: str,
        container: str,
    ):
        self.ws, self.protocol, self.view, self.command = ws, protocol, view, command
        self.want_stdin, self.want_stdout = stdin, stdout
        self.want_stderr = stderr and not tty  # like the kubelet: with a tty, stderr is the terminal
        self.tty = tty
        self.pod, self.container = pod, container
        self.process: subprocess.Popen | None = None
        self._stdin_fd: int | None = None
        self._master: int | None = None
        self._stopped = threading.Event()  # the process is done (or could not start)
        self._ended_reason: str | None = None  # why the emulator ended it (pod deleted, container restarted)
        self._lock = threading.Lock()

    # -- running ------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Start the process and serve the websocket until both are done. Called on the request's thread."""
        readers = self._start()
        if readers is None:
            return
        waiter = threading.Thread(target=self._wait, args=(readers,), name="emulator-exec-wait", daemon=True)
        waiter.start()
        try:
            self._serve_input()
        finally:
            # The client went away (or the stream ended): nothing may outlive it.
            # A hang-up first, as a terminal closing; what ignores it (started under nohup, say) is
            # killed soon after, so the closing handshake is not held up.
            self._kill(signal.SIGHUP)
            waiter.join(timeout=HANGUP_GRACE_SECONDS)
            self._kill(signal.SIGKILL)
            self._close_fds()

    def end(self, reason: str) -> None:
        """The pod or container is going away: kill the command; the Status will say `reason`."""
        with self._lock:
            if self._ended_reason is None:
                self._ended_reason = reason
        self._kill(signal.SIGKILL)

    def _start(self) -> list[threading.Thread] | None:
        env, cwd = self.view.env, str(self.view.cwd)
        try:
            if self.tty:
                master, slave = pty.openpty()
                _set_size(master, 80, 24)
                argv = [_SETSID, "-c", *self.command] if _SETSID else [sys.executable, "-c", _CTTY_TRAMPOLINE]
                if not _SETSID:
                    argv += self.command
                try:
                    self.process = subprocess.Popen(
                        argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, close_fds=True
                    )
                finally:
                    os.close(slave)
                self._master = master
                self._stdin_fd = master if self.want_stdin else None
                streams = [(master, STDOUT if self.want_stdout else None)]
            else:
                self.process = subprocess.Popen(
                    self.command,
                    stdin=subprocess.PIPE if self.want_stdin else subprocess.DEVNULL,
                    stdout=subprocess.PIPE if self.want_stdout else subprocess.DEVNULL,
                    stderr=subprocess.PIPE if self.want_stderr else subprocess.DEVNULL,
                    cwd=cwd,
                    env=env,
                    close_fds=True,
                    start_new_session=True,
                    bufsize=0,
                )
                if self.process.stdin is not None:
                    self._stdin_fd = self.process.stdin.fileno()
                streams = []
                if self.process.stdout is not None:
                    streams.append((self.process.stdout.fileno(), STDOUT))
                if self.process.stderr is not None:
                    streams.append((self.process.stderr.fileno(), STDERR))
        except OSError as exc:
            with self._lock:
                reason = self._ended_reason
            # Ended while it started: its pod's files may be gone already, which is not what to report.
            why = f"error executing command in container: {reason}" if reason else self._start_error(exc)
            self._send_status(internal_error(why))
            self.ws.close()
            return None
        with self._lock:
            ended = self._ended_reason is not None
        if ended:  # its pod went while it started (`end` found no process to kill)
            self._kill(signal.SIGKILL)
        readers = [
            threading.Thread(target=self._pump, args=(fd, channel), name="emulator-exec-out", daemon=True)
            for fd, channel in streams
        ]
        for reader in readers:
            reader.start()
        return readers

    def _start_error(self, exc: OSError) -> str:
        name = self.command[0] if self.command else ""
        if isinstance(exc, FileNotFoundError) and exc.filename == self.view.cwd:
            why = f'chdir to cwd ("{self.view.cwd}") set in config.json failed: no such file or directory'
        elif isinstance(exc, FileNotFoundError):
            why = f'exec: "{name}": executable file not found in $PATH'
        elif isinstance(exc, PermissionError):
            why = f'exec: "{name}": permission denied'
        else:
            why = f'exec: "{name}": {exc.strerror or exc}'
        return (
            "error executing command in container: failed to exec in container: failed to start exec: "
            f"OCI runtime exec failed: exec failed: unable to start container process: {why}: unknown"
        )

    def _pump(self, fd: int, channel: int | None) -> None:
        """Process output -> websocket frames, until EOF (or, for a pty, the drain after exit)."""
        try:
            while True:
                if self._master is not None and fd == self._master:
                    # A pty stays open while background jobs hold it: stop a while after the process exits.
                    timeout = _DRAIN_AFTER_EXIT if self._stopped.is_set() else 0.5
                    readable, _, _ = select.select([fd], [], [], timeout)
                    if not readable:
                        if self._stopped.is_set():
                            return
                        continue
                try:
                    data = os.read(fd, _CHUNK)
                except OSError as exc:
                    if exc.errno in (errno.EIO, errno.EBADF):  # pty: the last holder of the slave closed it
                        return
                    raise
                if not data:
                    return
                if channel is not None:
                    self.ws.send(bytes((channel,)) + data)
        except Closed:
            return

    def _wait(self, readers: list[threading.Thread]) -> None:
        """Once the process exits and its output is sent: the Status, then the closing handshake."""
        assert self.process is not None
        code = self.process.wait()
        self._stopped.set()
        for reader in readers:
            reader.join()
        with self._lock:
            reason = self._ended_reason
        if reason is not None:
            status = internal_error(f"error executing command in container: {reason}")
        elif code == 0:
            status = success_status()
        else:
            # A signal: the shell convention, as a container runtime reports it (128 + signal).
            status = exit_status(self.command, code if code > 0 else 128 - code)
        self._send_status(status)
        self.ws.close()

    def _send_status(self, status: dict) -> None:
        try:
            self.ws.send(bytes((STATUS,)) + json.dumps(status).encode())
        except Closed:
            pass

    def _serve_input(self) -> None:
        """Websocket -> process: stdin, resizes, stdin close; until the websocket closes."""
        while True:
            try:
                _opcode, message = self.ws.receive()
            except Closed:
                return
            if not message:
                continue
            channel, data = message[0], message[1:]
            if channel == STDIN:
                if data:
                    self._write_stdin(data)
            elif channel == RESIZE:
                self._resize(data)
            elif channel == CLOSE and self.protocol == V5 and data[:1] == bytes((STDIN,)):
                self._close_stdin()

    def _write_stdin(self, data: bytes) -> None:
        fd = self._stdin_fd
        if fd is None:
            return
        view = memoryview(data)
        try:
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError:  # the process closed its stdin or exited: like a container runtime, drop the rest
            self._close_stdin()

    def _close_stdin(self) -> None:
        fd, self._stdin_fd = self._stdin_fd, None
        if fd is None:
            return
        if self.tty:
            # The terminal stays (it is also stdout): an end-of-file on it is ^D.
            try:
                os.write(fd, b"\x04")
            except OSError:
                pass
        elif self.process is not None and self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass

    def _resize(self, data: bytes) -> None:
        if self._master is None:
            return
        try:
            size = json.loads(data)
            width, height = int(size.get("Width", 0)), int(size.get("Height", 0))
        except (ValueError, TypeError, AttributeError):
            return
        if 0 < width < 65536 and 0 < height < 65536:
            try:
                _set_size(self._master, width, height)
            except OSError:
                pass

    def _kill(self, sig: int) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)  # its own session: the whole process group
        except OSError:
            try:
                process.send_signal(sig)
            except OSError:
                pass

    def _close_fds(self) -> None:
        process = self.process
        if process is not None:
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass
        if self._master is not None:
            try:
                os.close(self._master)
            except OSError:
                pass
            self._master = None


def _set_size(fd: int, width: int, height: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
