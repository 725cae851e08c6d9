"""Values every page shows: the cluster in use and the team switcher."""

from functools import cache

from django.conf import settings

from deployments.access import current_team, teams_for
from deployments.cluster.client import cluster_configured


@cache
def _cluster_missing(api_url: str, kubeconfig: str) -> bool:
    """Whether no cluster is configured (checked once per configuration, not per request)."""
    return not cluster_configured()


def platform(request):
    context = {
        "cluster_simulated": settings.CLUSTER_SIMULATED,
        "cluster_missing": _cluster_missing(settings.KUBE_API_URL, settings.KUBECONFIG),
        "base_domain": settings.BASE_DOMAIN,
        "edge_host": settings.EDGE_HOST,
    }
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        teams = teams_for(user)
        context["user_teams"] = teams
        context["current_team"] = current_team(request, teams)
    return context
