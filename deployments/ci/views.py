"""The project settings page's build section: thin views over `deployments.ci.services`.

Admins manage the secrets and the runner; developers see that they exist, the webhook address,
the deploy key's public half, the HTTPS token's hint and the workflow file. A new token or secret is in the POST's own
response, once (no redirect, no session, not cacheable): Diploi keeps no way to show it again.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from deployments.access import project_for
from deployments.ci import services
from deployments.ci.selectors import ci_overview
from deployments.models import Role


def _page(request, project, membership, *, revealed=None, status=200, error=""):
    from deployments.views import project_settings_page

    return project_settings_page(request, project, membership, revealed=revealed, ci_error=error, status=status)


def _action(request) -> str:
    return request.POST.get("action", "")


def _rotate_or_revoke(request, project_id: int, *, rotate, revoke, what: str, where: str):
    """Rotate (showing the new value once) or revoke one of the project's secrets. Admins only."""
    project, membership = project_for(request.user, project_id, Role.ADMIN)
    if _action(request) == "revoke":
        revoke(project=project, actor=request.user)
        return _page(request, project, membership)
    if _action(request) != "rotate":
        return _page(request, project, membership, status=400, error="Unknown action.")
    value = rotate(project=project, actor=request.user)
    return _page(request, project, membership, revealed={"what": what, "value": value, "where": where})


@login_required
@require_POST
@never_cache
def ci_build_token(request, project_id: int):
    return _rotate_or_revoke(
        request,
        project_id,
        rotate=services.build_token_rotate,
        revoke=services.build_token_revoke,
        what="Build token",
        where="the repository secret DIPLOI_BUILD_TOKEN",
    )


@login_required
@require_POST
@never_cache
def ci_webhook_secret(request, project_id: int):
    return _rotate_or_revoke(
        request,
        project_id,
        rotate=services.webhook_secret_rotate,
        revoke=services.webhook_secret_revoke,
        what="Webhook secret",
        where="the GitHub webhook's Secret field",
    )


@login_required
@require_POST
def ci_deploy_key(request, project_id: int):
    project, membership = project_for(request.user, project_id, Role.ADMIN)
    if _action(request) == "delete":
        services.deploy_key_delete(project=project, actor=request.user)
    elif _action(request) == "generate":
        services.deploy_key_generate(project=project, actor=request.user)
    else:
        return _page(request, project, membership, status=400, error="Unknown action.")
    return _page(request, project, membership)


@login_required
@require_POST
@never_cache
def ci_repository_token(request, project_id: int):
    """Store or remove the HTTPS token clone steps give an https:// repository. The token is never
    shown again, not even in the form after an error."""
    project, membership = project_for(request.user, project_id, Role.ADMIN)
    if _action(request) == "delete":
        services.repository_token_delete(project=project, actor=request.user)
    elif _action(request) == "set":
        try:
            services.repository_token_set(
                project=project,
                token=request.POST.get("token", ""),
                username=request.POST.get("username", ""),
                actor=request.user,
            )
        except ValidationError as error:
            return _page(request, project, membership, status=400, error=" ".join(error.messages))
    else:
        return _page(request, project, membership, status=400, error="Unknown action.")
    return _page(request, project, membership)


@login_required
@require_POST
def ci_build_runner(request, project_id: int):
    project, membership = project_for(request.user, project_id, Role.ADMIN)
    try:
        services.project_build_runner_set(
            project=project, runner=request.POST.get("build_runner", ""), actor=request.user
        )
    except ValidationError as error:
        return _page(request, project, membership, status=400, error=" ".join(error.messages))
    return _page(request, project, membership)


@login_required
@require_safe
def ci_workflow(request, project_id: int):
    """The workflow file, as a download to commit."""
    project, membership = project_for(request.user, project_id, Role.DEVELOPER)
    overview = ci_overview(request, project, membership)
    response = HttpResponse(overview.workflow, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="diploi.yml"'
    return response
