"""Telling live pages that something changed: group names and on-commit sends.

Only ids go over the channel layer; consumers re-read what they render.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from diploi_site.tracing import trace

logger = logging.getLogger(__name__)


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
        async_to_sync(send_all)()
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
            (deployment_group(deployment_id), {"type": "deployment.changed", "deployment_id": deployment_id}),
            (
                project_group(project_id),
                {"type": "project.changed", "project_id": project_id, "deployment_id": deployment_id},
            ),
            (team_group(team_id), {"type": "team.changed", "team_id": team_id, "project_id": project_id}),
        )

    transaction.on_commit(send)


def publish_deployment_page_changed(deployment_id: int) -> None:
    """Tell only the deployment's own pages to re-render (e.g. its live SSH session count), on commit."""
    message = {"type": "deployment.changed", "deployment_id": deployment_id}
    transaction.on_commit(lambda: _send((deployment_group(deployment_id), message)))
