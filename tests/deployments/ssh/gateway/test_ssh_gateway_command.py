"""`manage.py ssh_gateway` as its own process: it listens where told, serves health, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
from django.core.management import CommandError

from deployments.management.commands.ssh_gateway import parse_listen
from tests import stack
from tests.support import free_port, python_command, wait_for

ROOT = Path(__file__).resolve().parents[4]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.0.0.0:2222", ("0.0.0.0", 2222)), ("[::]:22", ("::", 22)), (":2200", ("0.0.0.0", 2200))],
)
def test_it_reads_where_to_listen(value, expected):
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["2222", "host:", "host:99999", "host:ssh"])
def test_a_bad_listen_address_is_refused_clearly(value):
    with pytest.raises(CommandError, match="SSH_LISTEN must be host:port"):
        parse_listen(value)


@pytest.mark.django_db(transaction=True)
def test_it_serves_ssh_and_health_then_stops_on_sigterm(emulator, tmp_path):
    port, health = free_port(), free_port()
    env = {**os.environ, "KUBE_API_URL": emulator.url, "HEALTH_PORT": str(health), "DIPLOI_DATA_DIR": str(tmp_path)}
    env["DATABASE_URL"] = stack.test_database_url()
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    process = subprocess.Popen(
        python_command("manage.py", "ssh_gateway", "--listen", f"127.0.0.1:{port}"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def banner() -> bytes:
            assert process.poll() is None, process.stdout.read()
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                return sock.recv(64)

        assert wait_for(banner, timeout=30, what="the gateway's SSH banner").startswith(b"SSH-2.0-Diploi")
        readiness = urllib.request.urlopen(f"http://127.0.0.1:{health}/readyz?verbose", timeout=5).read()
        assert b'"process": "ssh-gateway"' in readiness
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert b"Stopped." in output
