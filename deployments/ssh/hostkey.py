"""The SSH gateway's host key: an ed25519 key generated once and kept in the database.

Every gateway replica (and the profile page that shows the fingerprint) reads the
same row, so users verify one key whichever replica answers.
"""

from __future__ import annotations

import asyncssh
from django.conf import settings
from django.db import IntegrityError, transaction

from deployments.ssh.gateway.models import HostKey

ALGORITHM = "ssh-ed25519"


def host_key() -> asyncssh.SSHKey:
    """The host key, generated and stored on first use. Idempotent; safe when replicas start together."""
    row = HostKey.objects.filter(name="gateway").first()
    if row is None:
        key = asyncssh.generate_private_key(ALGORITHM)
        try:
            with transaction.atomic():
                row = HostKey.objects.create(
                    name="gateway", algorithm=ALGORITHM, private_key=key.export_private_key().decode()
                )
        except IntegrityError:
            # Another replica created it first: use theirs, so every replica presents one key.
            row = HostKey.objects.get(name="gateway")
    return asyncssh.import_private_key(row.private_key)


def host_key_fingerprint() -> str:
    """`SHA256:...`, as `ssh` prints it when it first meets the gateway."""
    return host_key().get_fingerprint("sha256")


def known_hosts_line(*, host: str | None = None, port: int | None = None) -> str:
    """A ready `~/.ssh/known_hosts` line for the gateway at SSH_HOST (and SSH_PORT when not 22)."""
    host = host or settings.SSH_HOST
    port = port or settings.SSH_PORT
    name = host if port == 22 else f"[{host}]:{port}"
    public = host_key().export_public_key("openssh").decode().split()
    return f"{name} {public[0]} {public[1]}"
