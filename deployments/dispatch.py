"""Handing work to the workers. The database row is the record of the work; the Celery message only wakes a worker.

A request that records work (a deployment saved, a delete asked for) sends
its task once the transaction commits. When the broker cannot take the
message (Redis restarting, say), the request still succeeds: the row says
what is pending, and the watcher's sweeper sends the task again
(`deployments.sweeper`).
"""

from __future__ import annotations

import logging
from functools import partial

from celery import Task
from django.db import transaction

logger = logging.getLogger(__name__)


def send(task: Task, *args) -> bool:
    """Send ``task(*args)`` to the broker now; False (logged) when the broker cannot take it."""
    try:
        task.apply_async(args=args)
    except Exception as error:  # noqa: BLE001 - whatever the broker does, the recorded work is not lost
        logger.warning("could not send %s%r to the broker (%s); the sweeper will send it again", task.name, args, error)
        return False
    return True


def send_on_commit(task: Task, *args) -> None:
    """Send ``task(*args)`` once the current transaction commits (never inside it)."""
    transaction.on_commit(partial(send, task, *args))
