"""Browsing the catalog: the list of templates and one template's page. Read-only."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from deployments.access import current_team, membership_for
from deployments.models import Role
from templates_catalog import display, selectors


@login_required
@require_GET
def catalog(request):
    templates = [(template, template.spec) for template in selectors.catalog_templates()]
    return render(request, "templates_catalog/catalog.html", {"templates": templates})


@login_required
@require_GET
def template_detail(request, slug: str):
    template = selectors.catalog_templates().filter(slug=slug).first()
    if template is None:
        raise Http404("No such template.")
    spec = template.spec
    team = current_team(request)
    membership = membership_for(request.user, team.pk) if team else None
    context = {
        "template": template,
        "spec": spec,
        "can_create": bool(membership and membership.allows(Role.DEVELOPER)),
        "team": team,
        **overview_context(spec),
    }
    return render(request, "templates_catalog/template_detail.html", context)


def overview_context(spec) -> dict:
    """Everything `_spec_overview.html` shows (the detail page and the admin share it)."""
    return {
        "spec": spec,
        "stage_rows": display.stage_rows(spec),
        "service_rows": display.service_rows(spec, base_domain=settings.BASE_DOMAIN),
        "volume_rows": display.volume_rows(spec),
        "ssh_rows": display.ssh_rows(spec, ssh_host=settings.SSH_HOST, ssh_port=settings.SSH_PORT),
        "action_rows": [(action, display.argv_text(action.command)) for action in spec.actions],
        "log_rows": [(log, display.service_name(spec, log.component)) for log in spec.logs],
    }
