"""Action pages and buttons: thin, over `actions.services` and `actions.selectors`."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from deployments import selectors
from deployments.access import deployment_for
from deployments.actions import selectors as action_selectors
from deployments.actions import services
from deployments.models import Role


def _go(request, url: str):
    """Where the browser goes next: an htmx button makes the client navigate, a plain form redirects."""
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@login_required
@require_POST
def action_run_request(request, deployment_id: int):
    """Run one of the stage's actions (developers and admins). An action that asks first in this
    stage sends the browser to its confirmation page unless the form says ``confirmed``: the
    server refuses to start it otherwise, whatever the page did. A second click while it runs
    shows the running one."""
    deployment, _ = deployment_for(request.user, deployment_id, Role.DEVELOPER)
    name = request.POST.get("action", "")[:200]
    confirmed = request.POST.get("confirmed") == "1"
    try:
        run, created = services.action_run_start(
            deployment=deployment, action_name=name, actor=request.user, confirmed=confirmed
        )
    except services.ConfirmationRequired:
        url = reverse("action_confirm", args=[deployment.pk]) + "?" + urlencode({"action": name})
        return _go(request, url)
    except ValidationError as error:
        text = " ".join(error.messages)
        if request.htmx:
            return HttpResponse(text, status=409, content_type="text/plain")
        messages.error(request, text)
        return redirect("deployment", deployment.pk)
    if not created:
        messages.info(request, f"“{run.action}” is already running: here it is.")
    return _go(request, reverse("action_run", args=[deployment.pk, run.pk]))


@login_required
@require_safe
def action_confirm(request, deployment_id: int):
    """The confirmation step of an action that asks first: what will run where, and a Run button
    posting ``confirmed=1``."""
    deployment, membership = deployment_for(request.user, deployment_id, Role.DEVELOPER)
    try:
        action = services.action_named(deployment, request.GET.get("action", "")[:200])
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("deployment", deployment.pk)
    context = selectors.deployment_context(deployment, membership, tab="action")
    running = services.active_run(deployment, action.name)
    context.update(
        action=action,
        asks_first=action.asks_first(deployment.stage),
        timeout_seconds=services.timeout_of(action),
        running=running,
    )
    return render(request, "deployments/action_confirm.html", context)


@login_required
@require_safe
def action_run_page(request, deployment_id: int, run_id: int):
    """One run: who, when, the command, the pod, its live output, exit status and duration."""
    deployment, membership = deployment_for(request.user, deployment_id)
    run = action_selectors.run_page(deployment, run_id)
    context = selectors.deployment_context(deployment, membership, tab="action")
    context["run"] = run
    return render(request, "deployments/action_run.html", context)


@login_required
@require_POST
def action_run_cancel(request, deployment_id: int, run_id: int):
    deployment, _ = deployment_for(request.user, deployment_id, Role.DEVELOPER)
    run = action_selectors.run_page(deployment, run_id)
    run = services.action_run_cancel(run=run, actor=request.user)
    if request.htmx:
        return HttpResponse(status=204)  # the run's socket shows it stopping, then stopped
    if run.is_active:
        messages.info(request, f"Stopping “{run.action}”…")
    return redirect("action_run", deployment.pk, run.pk)


@login_required
@require_safe
def action_run_output(request, deployment_id: int, run_id: int):
    """The run's kept output as a text file."""
    deployment, _ = deployment_for(request.user, deployment_id)
    run = action_selectors.run_page(deployment, run_id)
    response = HttpResponse(run.output, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{deployment.name}-action-{run.pk}.log"'
    return response
