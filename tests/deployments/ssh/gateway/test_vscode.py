"""VS Code Remote-SSH's prerequisites, used the way it uses them, with OpenSSH's client.

Remote-SSH runs ``ssh -T -D <port> -o ConnectTimeout=15 host bash`` and writes its install
script to that shell's stdin (it needs a writable ``$HOME`` for ``~/.vscode-server`` and
locks with ``ln``); it reaches the server it starts in the container through the SOCKS
proxy of ``-D`` (direct-tcpip channels to 127.0.0.1); with ``localServerDownload`` it
uploads the server's archive over SFTP. The emulated pod serves its declared port (8000)
with a stand-in, which here plays that server.
"""

from __future__ import annotations

import io
import os
import select
import socket
import struct
import subprocess
import tarfile
import time

import pytest

from tests.support import free_port, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

INSTALL_SCRIPT = b"""\
echo "home==$HOME=="
mkdir -p "$HOME/.vscode-server/bin" && echo "writable==yes=="
ln -s "$$" "$HOME/.vscode-server/.lock" && echo "locked==yes=="
echo "ready=="
"""


def socks5_http_get(proxy_port: int, host: str, port: int, path: str) -> bytes:
    """One HTTP/1.0 request through a SOCKS5 proxy (no authentication, CONNECT by host name), as VS Code's
    local server connects through ``ssh -D``."""
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=10) as sock:
        sock.sendall(b"\x05\x01\x00")
        assert sock.recv(2) == b"\x05\x00"
        name = host.encode()
        sock.sendall(b"\x05\x01\x00\x03" + bytes((len(name),)) + name + struct.pack(">H", port))
        reply = sock.recv(10)
        if reply[:2] != b"\x05\x00":
            raise ConnectionError(f"the SOCKS proxy refused: {reply!r}")
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def read_until(process: subprocess.Popen, marker: bytes, *, timeout: float = 30) -> bytes:
    """The process's stdout up to and including ``marker``; fails after ``timeout`` seconds."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        ready, _, _ = select.select([process.stdout], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            raise AssertionError(f"no {marker!r} within {timeout} s: {seen!r}")
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            raise AssertionError(f"the shell ended before {marker!r}: {seen!r} {process.stderr.read()!r}")
        seen += chunk
    return seen


def test_remote_ssh_installs_through_a_shell_tunnels_with_D_and_uploads_with_sftp(openssh, registered, running):
    target = running()
    socks = free_port()
    args = openssh.ssh_args(target.ssh_user, "-T", "-D", f"127.0.0.1:{socks}", "-o", "ConnectTimeout=15")
    shell = subprocess.Popen([*args, "bash"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        shell.stdin.write(INSTALL_SCRIPT)
        shell.stdin.flush()
        output = read_until(shell, b"ready==").decode()
        assert "writable==yes==" in output and "locked==yes==" in output
        home = output.split("home==", 1)[1].split("==", 1)[0]

        # The server's port, through the SOCKS proxy of the same connection, while the shell goes on.
        answer = wait_for(lambda: socks5_http_get(socks, "127.0.0.1", 8000, "/vscode-server"), timeout=20, what="SOCKS")
        assert answer.startswith(b"HTTP/1.") and b"Request: GET /vscode-server" in answer

        # The server's archive, uploaded over SFTP, unpacked by the shell.
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            body = b"#!/bin/sh\necho code-server\n"
            info = tarfile.TarInfo("server/bin/code-server")
            info.size, info.mode = len(body), 0o755
            tar.addfile(info, io.BytesIO(body))
        local = openssh.key.parent / "vscode-server.tar.gz"
        local.write_bytes(archive.getvalue())
        batch = openssh.key.parent / "sftp-batch"
        batch.write_text(f"put {local} {home}/.vscode-server/bin/vscode-server.tar.gz\n")
        sftp = ["sftp", "-P", str(openssh.port), *openssh.options(), "-b", str(batch), f"{target.ssh_user}@127.0.0.1"]
        uploaded = subprocess.run(sftp, capture_output=True, timeout=60)
        assert uploaded.returncode == 0, uploaded.stderr

        shell.stdin.write(
            b'cd "$HOME/.vscode-server/bin" && tar xzf vscode-server.tar.gz && ./server/bin/code-server\n'
        )
        shell.stdin.flush()
        assert read_until(shell, b"code-server\n") == b"code-server\n"
        shell.stdin.close()  # as VS Code ends the connection: the shell sees EOF and exits
        assert shell.wait(20) == 0
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.wait(10)
