"""Who may see and do what: every view, form, htmx endpoint and consumer asks here.

Someone outside a deployment's team gets a 404 (the deployment does not exist
for them); a member whose role is too low gets a 403.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from deployments.models import Deployment, Membership, Project, Role, Team
from diploi_site.baked import BakedQuery

SESSION_TEAM_KEY = "diploi_team_id"


def teams_for(user) -> list[Team]:
    if not user.is_authenticated:
        return []
    return list(Team.objects.filter(memberships__user=user).order_by("name"))


def membership_for(user, team_id: int) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, team_id=team_id).select_related("team").first()


def current_team(request, teams: list[Team] | None = None) -> Team | None:
    """The team chosen in the switcher, else the user's first team (``teams``: the user's, if already read)."""
    teams = teams_for(request.user) if teams is None else teams
    chosen = request.session.get(SESSION_TEAM_KEY)
    for team in teams:
        if team.pk == chosen:
            return team
    return teams[0] if teams else None


def require_role(membership: Membership | None, role: str) -> Membership:
    if membership is None:
        raise Http404("No such page.")
    if not membership.allows(role):
        raise PermissionDenied(f"Your role in {membership.team} is {membership.role}; this needs {role}.")
    return membership


def project_for(user, project_id: int, role: str = Role.VIEWER) -> tuple[Project, Membership]:
    """The project if ``user``'s team owns it and their role is at least ``role``; else 404/403."""
    project = Project.objects.select_related("team", "template").filter(pk=project_id).first()
    if project is None:
        raise Http404("No such project.")
    membership = require_role(membership_for(user, project.team_id), role)
    return project, membership


def _live_deployment_queryset(deployment_id: int):
    return (
        Deployment.objects.live()
        .select_related("project__team", "project__template", "template_version", "status")
        # The parsed spec is cached per version (`TemplateVersion.spec`): its source and data are
        # not read, and not decoded, on every page and live fragment.
        .defer("template_version__spec_data", "template_version__source")
        .filter(pk=deployment_id)
    )


# Compiled once: every page and every live fragment of a deployment reads it first.
_live_deployment = BakedQuery(_live_deployment_queryset)


def live_deployment(deployment_id: int) -> Deployment | None:
    """The deployment with what its pages show of its project and its stored status, unless deleted
    (no access check)."""
    found = _live_deployment(deployment_id)
    return found[0] if found else None


def deployment_for(user, deployment_id: int, role: str = Role.VIEWER) -> tuple[Deployment, Membership]:
    """A live deployment if ``user``'s team owns it and their role is at least ``role``; else 404/403."""
    deployment = live_deployment(deployment_id)
    if deployment is None:
        raise Http404("No such deployment.")
    membership = require_role(membership_for(user, deployment.project.team_id), role)
    return deployment, membership


def can_view_deployment(user, deployment_id: int) -> bool:
    try:
        deployment_for(user, deployment_id)
    except (Http404, PermissionDenied):
        return False
    return True


def can_view_project(user, project_id: int) -> bool:
    try:
        project_for(user, project_id)
    except (Http404, PermissionDenied):
        return False
    return True
