"""Database connections of long-lived threads (the watcher's loops, the web process's live pages).

Django keeps a connection sound per request (`close_old_connections`: too old for DB_CONN_MAX_AGE,
broken after an error, and a health check, a round trip of its own, before its next query). A
thread that works outside requests does the same, at most every CONNECTION_CHECK_SECONDS instead
of before each piece of work: the check cost as much as the work's cheapest queries.
"""

from __future__ import annotations

import threading
import time

from django.db import close_old_connections

CONNECTION_CHECK_SECONDS = 1.0


class ConnectionChecks(threading.local):
    """When this thread last checked its connections."""

    def __init__(self):
        self.at = float("-inf")

    def check(self, *, at_once: bool = False) -> None:
        """`close_old_connections` if the last check is CONNECTION_CHECK_SECONDS old (or ``at_once``:
        after an error, which leaves the connection to be closed unless it still answers)."""
        if at_once or time.monotonic() - self.at >= CONNECTION_CHECK_SECONDS:
            close_old_connections()
            self.at = time.monotonic()
