"""Telling live pages that something changed: group names and on-commit sends.

Only ids go over the channel layer; consumers re-read what they render.
"""

import asyncio
import logging
import os
import threading
import uuid

from channels.layers import get_channel_layer
from django.db import transaction

from diploi_site.tracing import trace

logger = logging.getLogger(__name__)

# How long a send may take before the sender gives up waiting (the send itself goes on).
SEND_TIMEOUT_SECONDS = 5


class Publisher:
    """One event loop per process, on a thread of its own, that every synchronous send goes through.

    `async_to_sync` would start a new loop (and a new thread) for each send, and the channel layer
    keeps its Redis connection per loop: each change paid a new connection to Redis before its
    publish. This loop lives as long as the process, so its connection does too. Made again in a
    forked child (a Celery prefork worker), whose copy of the thread does not run.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="channel-layer-sender", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coroutine) -> None:
        """Run ``coroutine`` on the loop and wait for it (at most SEND_TIMEOUT_SECONDS)."""
        asyncio.run_coroutine_threadsafe(coroutine, self.loop()).result(SEND_TIMEOUT_SECONDS)


publisher = Publisher()


def team_group(team_id: int) -> str:
    return f"team.{team_id}"


def project_group(project_id: int) -> str:
    return f"project.{project_id}"


def deployment_group(deployment_id: int) -> str:
    return f"deployment.{deployment_id}"


def _send(*messages: tuple[str, dict]) -> None:
    """Send (group, message) pairs in one go. Best effort: a page that misses a
    message still gets the current state when it reconnects."""
    layer = get_channel_layer()
    if layer is None:
        return

    async def send_all() -> None:
        for group, message in messages:
            await layer.group_send(group, message)

    try:
        publisher.run(send_all())
    except Exception:
        logger.warning("could not tell %s that they changed", [g for g, _ in messages], exc_info=True)


def publish_team_changed(team_id: int) -> None:
    """Tell the team's project-list pages to re-render (a project added, renamed, removed), on commit."""
    transaction.on_commit(lambda: _send((team_group(team_id), {"type": "team.changed", "team_id": team_id})))


def publish_deployment_changed(deployment) -> None:
    """Tell the deployment's pages, its project page and its team's list to re-render, on commit."""
    deployment_id, project_id, team_id = deployment.pk, deployment.project_id, deployment.project.team_id

    def send() -> None:
        trace("published", deployment_id)
        _send(
            (deployment_group(deployment_id), deployment_message(deployment_id)),
            (
                project_group(project_id),
                {"type": "project.changed", "project_id": project_id, "deployment_id": deployment_id},
            ),
            (team_group(team_id), {"type": "team.changed", "team_id": team_id, "project_id": project_id}),
        )

    transaction.on_commit(send)


def deployment_message(deployment_id: int) -> dict:
    """What a deployment's pages are told: its id, and a new ``change`` id for each message, so the
    sockets of one web process that got the same message can share one render of it."""
    return {"type": "deployment.changed", "deployment_id": deployment_id, "change": uuid.uuid4().hex}


def publish_deployment_page_changed(deployment_id: int) -> None:
    """Tell only the deployment's own pages to re-render (e.g. its live SSH session count), on commit."""
    transaction.on_commit(lambda: _send((deployment_group(deployment_id), deployment_message(deployment_id))))
