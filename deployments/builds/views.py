"""Build pages and actions: thin, over `builds.services` and `selectors`."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from deployments import selectors
from deployments.access import deployment_for
from deployments.builds import services
from deployments.builds.models import Build
from deployments.models import Role
from deployments.naming import redact_credentials


@login_required
@require_POST
def deployment_deploy_latest(request, deployment_id: int):
    """Build the branch head again (developers and admins); the deployment rolls out once it is built."""
    deployment, _ = deployment_for(request.user, deployment_id, Role.DEVELOPER)
    try:
        builds = services.builds_request(
            deployment=deployment, trigger=Build.Trigger.DEPLOY_LATEST, triggered_by=request.user
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        what = ", ".join(build.component for build in builds)
        messages.success(request, f"Building {what} at {builds[0].short_sha}: it rolls out once built.")
    return redirect("deployment", deployment.pk)


@login_required
@require_safe
def build_log(request, deployment_id: int, build_id: int):
    """A build's log: refreshed every second while it runs (htmx asks for the log region only)."""
    deployment, _ = deployment_for(request.user, deployment_id)
    build = selectors.build_page(deployment, build_id)
    template = "deployments/build_log.html" + ("#build-log" if request.htmx else "")
    return render(request, template, {"deployment": deployment, "project": deployment.project, "build": build})


@login_required
@require_safe
def build_log_download(request, deployment_id: int, build_id: int):
    deployment, _ = deployment_for(request.user, deployment_id)
    build = selectors.build_page(deployment, build_id)
    response = HttpResponse(redact_credentials(build.log), content_type="text/plain; charset=utf-8")
    name = f"build-{build.pk}-{build.component}-{build.short_sha or 'none'}.log"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
