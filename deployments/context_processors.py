"""Values every page shows: the cluster in use and the team switcher."""

from django.conf import settings

from deployments.access import current_team, teams_for


def platform(request):
    context = {
        "cluster_simulated": settings.CLUSTER_SIMULATED,
        "base_domain": settings.BASE_DOMAIN,
        "edge_host": settings.EDGE_HOST,
    }
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        context["user_teams"] = teams_for(user)
        context["current_team"] = current_team(request)
    return context
