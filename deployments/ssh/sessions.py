"""SSH session rows: the gateway opens and closes them; services ask it to close them.

The gateway polls `sessions_to_close` about every second for the sessions it
holds; that poll is also its heartbeat (``seen_at``), so a session whose
gateway died stops counting as live, and the sweeper ends it (`lost_sessions`).
This works across processes and machines: the database is the only channel.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from deployments import events
from deployments.models import ROLE_RANK, Deployment, DeploymentState, Membership, Project, Role
from deployments.ssh.access import Target
from deployments.ssh.models import SSHKey, SSHSession
from deployments.ssh.naming import ssh_user_for

GONE = "the session's record is gone"


@transaction.atomic
def session_open(*, target: Target, pod: str, source_address: str) -> int:
    """Record a session the gateway is starting into ``pod``, and the key's use; returns the session's id.

    If access was lost between `authorize` and now (the key removed, the member
    demoted, the deployment disabled), the row is born with its close requested,
    so the gateway's next poll ends it: no window in which a revoked key keeps a shell.
    """
    now = timezone.now()
    key_used = SSHKey.objects.filter(user_id=target.user_id, fingerprint=target.key_fingerprint)
    key_kept = key_used.update(last_used_at=now) > 0
    deployment = Deployment.objects.select_related("project").get(pk=target.deployment_id)
    session = SSHSession.objects.create(
        user_id=target.user_id,
        username=target.username,
        ssh_user=ssh_user_for(
            component=target.component,
            deployment=deployment.name,
            project=deployment.project.slug,
            replica=target.replica,
        ),
        key_fingerprint=target.key_fingerprint,
        deployment=deployment,
        component=target.component,
        pod=pod[:253],
        source_address=source_address[:64],
        started_at=now,
        seen_at=now,
    )
    if reason := _access_lost(target, deployment, key_kept=key_kept):
        SSHSession.objects.filter(pk=session.pk).update(close_requested_at=now, close_reason=reason)
    events.publish_deployment_page_changed(deployment.pk)
    return session.pk


def _access_lost(target: Target, deployment: Deployment, *, key_kept: bool) -> str:
    if not key_kept:
        return "your key was removed"
    membership = Membership.objects.filter(user_id=target.user_id, team__projects=deployment.project_id).first()
    if membership is None or not membership.allows(Role.DEVELOPER):
        return "you are no longer a developer in the deployment's team"
    if not deployment.enabled or deployment.state in (DeploymentState.DELETING, DeploymentState.DELETED):
        return "the deployment was disabled or deleted"
    return ""


@transaction.atomic
def session_close(*, session_id: int, exit_status: int | None, bytes_in: int, bytes_out: int, reason: str = "") -> None:
    """Record that a session ended. Idempotent: only the first call for a session writes."""
    now = timezone.now()
    ended = SSHSession.objects.open().filter(pk=session_id)
    deployment_id = ended.values_list("deployment_id", flat=True).first()
    if (
        ended.update(
            ended_at=now,
            seen_at=now,
            exit_status=exit_status,
            bytes_in=max(0, bytes_in),
            bytes_out=max(0, bytes_out),
            end_reason=reason[:300],
        )
        and deployment_id is not None
    ):
        events.publish_deployment_page_changed(deployment_id)


def sessions_to_close(session_ids: Iterable[int]) -> dict[int, str]:
    """Of the sessions a gateway holds, those it must end now, with the reason to tell the user.

    Also the gateway's heartbeat: marks the open ones as seen. A session that is
    not open any more (ended as lost, or its row deleted) is to
    be closed too.
    """
    ids = set(session_ids)
    if not ids:
        return {}
    now = timezone.now()
    SSHSession.objects.open().filter(pk__in=ids).update(seen_at=now)
    rows = SSHSession.objects.filter(pk__in=ids).values_list("pk", "ended_at", "close_requested_at", "close_reason")
    found = {}
    for pk, ended_at, requested_at, reason in rows:
        if ended_at is not None:
            found[pk] = reason or "the session was ended"
        elif requested_at is not None:
            found[pk] = reason or "the session was closed by Diploi"
    found.update({pk: GONE for pk in ids - {row[0] for row in rows}})
    return found


# ----------------------------------------------------------------------------- asking to close


def _request_close(sessions, reason: str) -> int:
    """Mark open sessions as to be closed (those not asked already). Returns how many."""
    return (
        sessions.open()
        .filter(close_requested_at__isnull=True)
        .update(close_requested_at=timezone.now(), close_reason=reason[:300])
    )


def sessions_close_for_key(*, user_id: int, fingerprint: str, reason: str) -> int:
    """Ask the gateway to end the user's open sessions opened with that key."""
    return _request_close(SSHSession.objects.filter(user_id=user_id, key_fingerprint=fingerprint), reason)


def sessions_close_for_member(*, user_id: int, team_id: int, reason: str) -> int:
    """Ask the gateway to end the user's open sessions into the team's deployments."""
    projects = Project.objects.filter(team_id=team_id).values("pk")
    return _request_close(SSHSession.objects.filter(user_id=user_id, deployment__project__in=projects), reason)


def sessions_close_for_role(*, user_id: int, team_id: int, role: str | None, team_name: str) -> int:
    """After a membership change: end the user's sessions into the team's deployments unless
    ``role`` (None: removed from the team) still allows SSH."""
    if role is not None and ROLE_RANK[Role(role)] >= ROLE_RANK[Role.DEVELOPER]:
        return 0
    reason = f"you were removed from team {team_name}" if role is None else f"you are now a {role} in team {team_name}"
    return sessions_close_for_member(user_id=user_id, team_id=team_id, reason=reason)


def sessions_close_request(*, session_ids: Iterable[int], reason: str) -> int:
    """Ask the gateway to end these sessions (an operator's choice in the admin)."""
    return _request_close(SSHSession.objects.filter(pk__in=list(session_ids)), reason)


def sessions_close_for_deployment(*, deployment_id: int, reason: str) -> int:
    """Ask the gateway to end every open session into the deployment."""
    return _request_close(SSHSession.objects.filter(deployment_id=deployment_id), reason)


# ----------------------------------------------------------------------------- live and lost


def _stale_before(now=None):
    return (now or timezone.now()) - timedelta(seconds=settings.SSH_SESSION_STALE_SECONDS)


def live_sessions(deployment_id: int):
    """Open sessions into the deployment whose gateway reported them recently."""
    return SSHSession.objects.open().filter(deployment_id=deployment_id, seen_at__gte=_stale_before())


def lost_sessions(now=None) -> list[int]:
    """Open sessions no gateway has reported for SSH_SESSION_STALE_SECONDS (their gateway died)."""
    return list(SSHSession.objects.open().filter(seen_at__lt=_stale_before(now)).values_list("pk", flat=True)[:1000])


def session_end_lost(session_id: int) -> bool:
    """End a lost session as of when it was last seen; its exit status stays unknown.

    Idempotent, and a compare-and-set: a session its gateway reported again meanwhile is left open.
    """
    return bool(
        SSHSession.objects.open()
        .filter(pk=session_id, seen_at__lt=_stale_before())
        .update(ended_at=F("seen_at"), end_reason="the gateway stopped reporting this session")
    )
