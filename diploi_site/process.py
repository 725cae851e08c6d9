"""Which of Diploi's processes this is: web, worker, watcher, ssh-gateway or standalone.

It names the process to the cluster (the client's user agent, which API
servers record in their audit logs) and in log lines. The image's entrypoint
sets ``DIPLOI_PROCESS``; commands that are a process of their own also set it
when they start.
"""

from __future__ import annotations

import os

_name = os.environ.get("DIPLOI_PROCESS", "")


def process_name() -> str:
    """This process's role; "web" unless something said otherwise (daphne has no start-up hook of ours)."""
    return _name or "web"


def set_process_name(name: str, *, unless_set: bool = False) -> None:
    """Say which process this is; with ``unless_set``, only when nothing (or the environment) said so yet."""
    global _name
    if unless_set and _name:
        return
    _name = name


def name_database_session(sender, connection, **_) -> None:
    """Name each new PostgreSQL session after this process (``diploi-worker``...), so that
    ``pg_stat_activity`` says which process holds which connection."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('application_name', %s, false)", [f"diploi-{process_name()}"])
