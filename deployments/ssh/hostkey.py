"""The gateway's host key: an ed25519 key generated once and kept in the database.

Every gateway process (and every replica of it) serves the same key, so users
can pin it once: the profile page and the README show its fingerprint and a
ready ``known_hosts`` line.
"""

from __future__ import annotations

import asyncssh
from django.conf import settings
from django.db import IntegrityError, transaction

from deployments.ssh.models import SSHHostKey

NAME = "gateway"


def _row() -> SSHHostKey:
    """The stored host key, generated the first time. Safe to race: of two processes
    generating at once, the database keeps one and both read it."""
    row = SSHHostKey.objects.filter(name=NAME).first()
    if row is not None:
        return row
    key = asyncssh.generate_private_key("ssh-ed25519")
    try:
        with transaction.atomic():
            SSHHostKey.objects.create(
                name=NAME,
                algorithm="ssh-ed25519",
                private_key=key.export_private_key("openssh").decode(),
                public_key=key.export_public_key("openssh").decode().strip(),
                fingerprint=key.get_fingerprint("sha256"),
            )
    except IntegrityError:
        pass  # another process stored one first: use that
    return SSHHostKey.objects.get(name=NAME)


def host_key() -> asyncssh.SSHKey:
    """The gateway's private host key (generated and stored the first time)."""
    return asyncssh.import_private_key(_row().private_key)


def host_key_fingerprint() -> str:
    """``SHA256:…``, as `ssh` shows it when it first connects."""
    return _row().fingerprint


def known_hosts_line() -> str:
    """A line for ``~/.ssh/known_hosts`` naming SSH_HOST (and SSH_PORT when it is not 22)."""
    host = settings.SSH_HOST if settings.SSH_PORT == 22 else f"[{settings.SSH_HOST}]:{settings.SSH_PORT}"
    algorithm, data = _row().public_key.split()[:2]
    return f"{host} {algorithm} {data}"
