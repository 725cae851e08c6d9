"""The gateway's host key: generated once, kept, and shown as a fingerprint and a known_hosts line."""

from __future__ import annotations

import subprocess

import pytest

from deployments.ssh.hostkey import host_key, host_key_fingerprint, known_hosts_line
from deployments.ssh.models import SSHHostKey

pytestmark = pytest.mark.django_db


def test_it_is_generated_once_and_kept():
    first = host_key()
    assert first.get_algorithm() == "ssh-ed25519"
    assert host_key().get_fingerprint("sha256") == first.get_fingerprint("sha256")
    assert SSHHostKey.objects.count() == 1
    assert host_key_fingerprint() == first.get_fingerprint("sha256")


def test_the_known_hosts_line_names_the_port_when_it_is_not_22(settings, tmp_path):
    settings.SSH_HOST, settings.SSH_PORT = "ssh.example.com", 2222
    line = known_hosts_line()
    assert line.startswith("[ssh.example.com]:2222 ssh-ed25519 ")
    settings.SSH_PORT = 22
    assert known_hosts_line().startswith("ssh.example.com ssh-ed25519 ")
    # OpenSSH reads the line and finds the same fingerprint.
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(line + "\n")
    found = subprocess.run(
        ["ssh-keygen", "-l", "-F", "[ssh.example.com]:2222", "-f", str(known_hosts)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert host_key_fingerprint() in found.stdout
