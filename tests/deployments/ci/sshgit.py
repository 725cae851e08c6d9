"""A private Git repository behind a real OpenSSH server on 127.0.0.1: only keys it was given get in."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.conftest import need_service
from tests.support import free_port


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def seed_repository(repository: Path) -> str:
    """A bare repository at ``repository`` whose branch main holds one commit (a Dockerfile); its SHA."""
    root = repository.parent
    _git("init", "-q", "--bare", "-b", "main", str(repository), cwd=root)
    work = root / "work"
    _git("clone", "-q", str(repository), str(work), cwd=root)
    (work / "Dockerfile").write_text("FROM python:3.12-slim\n")
    _git("add", "-A", cwd=work)
    _git("-c", "user.email=dev@example.com", "-c", "user.name=Dev", "commit", "-q", "-m", "private", cwd=work)
    _git("push", "-q", "origin", "HEAD:main", cwd=work)
    return _git("rev-parse", "HEAD", cwd=work)


class SshGitServer:
    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.authorized = root / "authorized_keys"
        self.repository = root / "private.git"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"ssh://{os.environ.get('USER') or 'root'}@127.0.0.1:{self.port}{self.repository}"

    def start(self) -> SshGitServer:
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        if not Path(sshd).exists():
            need_service("OpenSSH's sshd (apt-get install openssh-server) serves the private test repository")
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.root / "host")], check=True)
        self.authorized.write_text("")
        config = self.root / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.root / 'host'}\n"
            f"AuthorizedKeysFile {self.authorized}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            f"UsePAM no\nStrictModes no\nPidFile {self.root / 'sshd.pid'}\nPermitRootLogin prohibit-password\n"
        )
        self.process = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=open(self.root / "sshd.log", "w")
        )
        self._seed()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if subprocess.run(["ssh-keyscan", "-p", str(self.port), "127.0.0.1"], capture_output=True).stdout:
                return self
            time.sleep(0.1)
        raise AssertionError(f"sshd did not start: {(self.root / 'sshd.log').read_text()}")

    def _seed(self) -> None:
        self.head = seed_repository(self.repository)

    def authorize(self, public_key: str) -> None:
        self.authorized.write_text(public_key + "\n")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
