"""What the SSH pages show: the user's keys, the gateway's host key, sessions of a deployment."""

from __future__ import annotations

from django.conf import settings

from deployments.ssh.hostkey import host_key_fingerprint, known_hosts_line
from deployments.ssh.models import SSHKey, SSHSession
from deployments.ssh.sessions import live_sessions

SESSIONS_SHOWN = 50


def keys_of(user) -> list[SSHKey]:
    return list(SSHKey.objects.filter(user=user).order_by("name", "pk"))


def gateway_context() -> dict:
    """Where the gateway answers and how to check its host key."""
    return {
        "ssh_host": settings.SSH_HOST,
        "ssh_port": settings.SSH_PORT,
        "host_key_fingerprint": host_key_fingerprint(),
        "known_hosts_line": known_hosts_line(),
    }


def deployment_sessions(deployment_id: int) -> list[SSHSession]:
    """The deployment's latest sessions, newest first (for the Activity tab)."""
    return list(SSHSession.objects.filter(deployment_id=deployment_id).order_by("-started_at", "-pk")[:SESSIONS_SHOWN])


def live_session_count(deployment_id: int) -> int:
    return live_sessions(deployment_id).count()
