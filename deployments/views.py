"""Dashboard pages. Thin: access checks in `access`, reads in `selectors`, writes in `services`.

Every view checks the user's team and role: outsiders get 404, a role too low
gets 403 and nothing happens. Every POST is CSRF-protected (the middleware).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from deployments import selectors, services
from deployments.access import SESSION_TEAM_KEY, current_team, deployment_for, membership_for, project_for, require_role
from deployments.cluster import errors as cluster_errors
from deployments.cluster.connection import get_cluster
from deployments.cluster.environment import EnvironmentError
from deployments.cluster.operations import describe
from deployments.forms import (
    DeleteForm,
    DeploymentCreateForm,
    DomainsForm,
    EnvironmentForm,
    ProjectForm,
    ProjectSettingsForm,
    RenameForm,
    apply_service_errors,
    format_env_lines,
)
from deployments.models import Role, Team
from deployments.naming import redact_credentials
from templates_catalog.models import Template

# ----------------------------------------------------------------------------- basics


@login_required
@require_safe
def home(request):
    return redirect("projects")


@login_required
@require_POST
def switch_team(request):
    team_id = request.POST.get("team", "")
    # At most 18 digits: a larger number is no id (and overflows SQLite's integers).
    if team_id.isascii() and team_id.isdigit() and len(team_id) <= 18 and membership_for(request.user, int(team_id)):
        request.session[SESSION_TEAM_KEY] = int(team_id)
    return redirect("projects")


# ----------------------------------------------------------------------------- projects


@login_required
@require_safe
def project_list(request):
    team = current_team(request)
    membership = membership_for(request.user, team.pk) if team else None
    page = selectors.team_projects_page(team, request.GET.get("page")) if team else None
    context = {
        "team": team,
        "page": page,
        "projects": page.object_list if page else [],
        "can_create": bool(membership and membership.allows(Role.DEVELOPER)),
    }
    return render(request, "deployments/project_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def project_create(request):
    team = current_team(request)
    membership = require_role(membership_for(request.user, team.pk) if team else None, Role.DEVELOPER)
    initial = {}
    slug = request.GET.get("template")
    if slug:
        initial["template"] = Template.objects.filter(slug=slug).first()
    form = ProjectForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            project = services.project_create(
                team=membership.team,
                name=data["name"],
                slug=data["slug"],
                template=data["template"],
                repository=data["repository"],
                actor=request.user,
            )
        except ValidationError as error:
            apply_service_errors(form, error)
        else:
            messages.success(request, f"Project “{project.name}” created. Now create its first deployment.")
            return redirect("deployment_create", project.pk)
    return render(request, "deployments/project_form.html", {"form": form, "team": membership.team})


@login_required
@require_safe
def project_detail(request, project_id: int):
    project, membership = project_for(request.user, project_id)
    page = selectors.project_deployments_page(project, request.GET.get("page"))
    context = {
        "project": project,
        "page": page,
        "deployments": page.object_list,
        "can": selectors.Permissions.of(membership),
    }
    return render(request, "deployments/project_detail.html", context)


def project_settings_page(request, project, membership, *, form=None, revealed=None, ci_error="", status=200):
    """The settings page: the project's form and its builds section (`deployments.ci`)."""
    from deployments.ci.selectors import ci_overview

    if form is None:
        initial = {"name": project.name, "repository": redact_credentials(project.repository)}
        form = ProjectSettingsForm(initial=initial)
    context = {
        "form": form,
        "project": project,
        "ci": ci_overview(request, project, membership),
        "revealed": revealed,
        "ci_error": ci_error,
    }
    return render(request, "deployments/project_settings.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def project_settings(request, project_id: int):
    project, membership = project_for(request.user, project_id, Role.DEVELOPER)
    initial = {"name": project.name, "repository": redact_credentials(project.repository)}
    form = ProjectSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.project_update(
                project=project,
                name=form.cleaned_data["name"],
                repository=form.cleaned_data["repository"],
                actor=request.user,
            )
        except ValidationError as error:
            apply_service_errors(form, error)
        else:
            messages.success(request, "Project settings saved.")
            return redirect("project", project.pk)
    return project_settings_page(request, project, membership, form=form)


@login_required
@require_POST
def project_delete(request, project_id: int):
    project, _ = project_for(request.user, project_id, Role.ADMIN)
    try:
        services.project_delete(project=project, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("project", project.pk)
    messages.success(request, f"Project “{project.name}” deleted.")
    return redirect("projects")


# ----------------------------------------------------------------------------- creating deployments


@login_required
@require_http_methods(["GET", "POST"])
def deployment_create(request, project_id: int):
    project, _ = project_for(request.user, project_id, Role.DEVELOPER)
    form = DeploymentCreateForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            deployment = services.deployment_create(
                project=project,
                name=data["name"],
                stage=data["stage"],
                branch=data["branch"] or "main",
                size=data["size"],
                addons=data.get("addons", []),
                env_overrides=data["env"],
                custom_domains=data["custom_domains"],
                actor=request.user,
            )
        except ValidationError as error:
            apply_service_errors(form, error)
        else:
            return redirect("deployment", deployment.pk)
    return render(request, "deployments/deployment_create.html", {"form": form, "project": project})


@login_required
@require_GET
def deployment_name_check(request, project_id: int):
    """As the name is typed: what is wrong with it, or the public addresses it gives."""
    project, _ = project_for(request.user, project_id, Role.DEVELOPER)
    name = request.GET.get("name", "").strip()
    stage = request.GET.get("stage") or None
    problems = services.deployment_name_problems(project, name, stage=stage) if name else []
    hosts = services.hostnames_for(project, name, stage=stage) if name and not problems else []
    return render(
        request, "deployments/deployment_create.html#name-check", {"problems": problems, "hosts": hosts, "name": name}
    )


# ----------------------------------------------------------------------------- deployment tabs


def _tab(request, deployment_id: int, tab: str, template: str, **extra):
    deployment, membership = deployment_for(request.user, deployment_id)
    context = selectors.deployment_context(deployment, membership, tab=tab)
    context.update(extra)
    return render(request, template, context)


@login_required
@require_safe
def deployment_overview(request, deployment_id: int):
    return _tab(request, deployment_id, "overview", "deployments/deployment_overview.html")


@login_required
@require_safe
def deployment_status(request, deployment_id: int):
    return _tab(request, deployment_id, "status", "deployments/deployment_status.html")


@login_required
@require_safe
def deployment_activity(request, deployment_id: int):
    return _tab(request, deployment_id, "activity", "deployments/deployment_activity.html")


def _options_context(deployment, membership, **forms):
    spec = deployment.spec
    tree = selectors.status_tree(deployment)
    addons = []
    for addon in spec.addons:
        if deployment.stage not in addon.stages or not addon.toggleable:
            continue
        volumes = [f"{v.name} ({v.size})" for v in addon.storage_for(deployment.stage)]
        addons.append({"addon": addon, "enabled": addon.id in deployment.enabled_addons, "volumes": volumes})
    default_service = spec.components[0].id
    return {
        "rename_form": forms.get("rename_form") or RenameForm(initial={"name": deployment.name}),
        "env_form": forms.get("env_form")
        or EnvironmentForm(
            initial={"env": format_env_lines(deployment.env_overrides, secrets=selectors.secret_overrides(deployment))},
            default_service=default_service,
        ),
        "domains_form": forms.get("domains_form")
        or DomainsForm(initial={"custom_domains": "\n".join(deployment.custom_domains)}),
        "delete_form": forms.get("delete_form") or DeleteForm(expected=deployment.name),
        **_environment(deployment),
        "optional_addons": addons,
        "volumes": selectors.deployment_volumes(deployment, tree),
        "endpoints": selectors.endpoints(deployment, tree),
    }


def _environment(deployment) -> dict:
    try:
        return {"environment": selectors.environment_rows(deployment), "environment_error": None}
    except EnvironmentError as error:
        return {"environment": [], "environment_error": str(error)}


@login_required
@require_safe
def deployment_options(request, deployment_id: int):
    deployment, membership = deployment_for(request.user, deployment_id)
    context = selectors.deployment_context(deployment, membership, tab="options")
    context.update(_options_context(deployment, membership))
    return render(request, "deployments/deployment_options.html", context)


def _options_post(request, deployment_id: int, role: str, handle):
    """Run one Options form: on success back to the tab with a message; on errors the tab with the form's errors.

    ``handle`` returns the success message, a dict of bound forms with errors,
    or None when it already told the user what went wrong (a message).
    """
    deployment, membership = deployment_for(request.user, deployment_id, role)
    result = handle(deployment)
    if isinstance(result, dict):
        context = selectors.deployment_context(deployment, membership, tab="options")
        context.update(_options_context(deployment, membership, **result))
        return render(request, "deployments/deployment_options.html", context, status=422)
    if result is not None:
        messages.success(request, result)
    return redirect("deployment_options", deployment.pk)


def _update_from_form(request, deployment, form, *, form_name: str, changes, message):
    """Apply a valid Options form through `services.deployment_update`.

    Returns the success message, or the form (by its context name) to show its errors.
    """
    if form.is_valid():
        try:
            services.deployment_update(deployment=deployment, actor=request.user, **changes(form.cleaned_data))
        except ValidationError as error:
            apply_service_errors(form, error)
        else:
            return message(form.cleaned_data)
    return {form_name: form}


@login_required
@require_POST
def deployment_rename(request, deployment_id: int):
    def handle(deployment):
        return _update_from_form(
            request,
            deployment,
            RenameForm(request.POST),
            form_name="rename_form",
            changes=lambda data: {"name": data["name"]},
            message=lambda data: f"Renamed to “{data['name']}”.",
        )

    return _options_post(request, deployment_id, Role.DEVELOPER, handle)


@login_required
@require_POST
def deployment_environment(request, deployment_id: int):
    def handle(deployment):
        form = EnvironmentForm(
            request.POST,
            default_service=deployment.spec.components[0].id,
            secrets=selectors.secret_overrides(deployment),
        )
        return _update_from_form(
            request,
            deployment,
            form,
            form_name="env_form",
            changes=lambda data: {"env_overrides": data["env"]},
            message=lambda data: "Environment saved; the services restart with it.",
        )

    return _options_post(request, deployment_id, Role.DEVELOPER, handle)


@login_required
@require_POST
def deployment_domains(request, deployment_id: int):
    def handle(deployment):
        return _update_from_form(
            request,
            deployment,
            DomainsForm(request.POST),
            form_name="domains_form",
            changes=lambda data: {"custom_domains": data["custom_domains"]},
            message=lambda data: "Custom domains saved.",
        )

    return _options_post(request, deployment_id, Role.DEVELOPER, handle)


@login_required
@require_POST
def deployment_addons(request, deployment_id: int):
    def handle(deployment):
        chosen = request.POST.getlist("addons")
        delete_storage = [a for a in request.POST.getlist("delete_storage") if a not in chosen]
        try:
            services.deployment_update(
                deployment=deployment, actor=request.user, addons=chosen, delete_storage_of=delete_storage
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages) + " Add-ons unchanged.")
            return None
        return "Add-ons saved." + (f" Deleting the storage of {', '.join(delete_storage)}." if delete_storage else "")

    return _options_post(request, deployment_id, Role.DEVELOPER, handle)


@login_required
@require_POST
def deployment_toggle(request, deployment_id: int):
    def handle(deployment):
        enabled = request.POST.get("enabled") == "1"
        try:
            services.deployment_update(deployment=deployment, actor=request.user, enabled=enabled)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return None
        return "Enabled: starting again." if enabled else "Disabled: scaled to zero. Storage is kept."

    return _options_post(request, deployment_id, Role.DEVELOPER, handle)


@login_required
@require_POST
def deployment_restart(request, deployment_id: int):
    deployment, membership = deployment_for(request.user, deployment_id, Role.DEVELOPER)
    service_id = request.POST.get("service") or None
    try:
        services.deployment_restart(deployment=deployment, actor=request.user, service_id=service_id)
    except ValidationError as error:
        return HttpResponse(" ".join(error.messages), status=409, content_type="text/plain")
    if request.htmx:
        deployment.refresh_from_db()
        context = selectors.deployment_context(deployment, membership, tab=request.POST.get("tab", "overview"))
        return render(request, "deployments/_deployment_header.html", context)
    messages.success(request, f"Restarting {service_id or 'all services'}.")
    # A URL, never a view name: `redirect("foo")` would look "foo" up as a view and fail after the restart.
    return HttpResponseRedirect(
        _local_url(request, request.POST.get("next")) or reverse("deployment", args=[deployment.pk])
    )


@login_required
@require_POST
def deployment_retry(request, deployment_id: int):
    """Apply the desired state again after a failure (developers): clears a permanent failure."""
    deployment, _ = deployment_for(request.user, deployment_id, Role.DEVELOPER)
    try:
        services.deployment_reconcile(deployment=deployment, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Applying the deployment again.")
    return redirect("deployment", deployment.pk)


def _local_url(request, url: str | None) -> str | None:
    """``url`` when it is a path on this site (a "next" field must never send users elsewhere), else None."""
    if (
        url
        and url.startswith("/")
        and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    ):
        return url
    return None


@login_required
@require_POST
def deployment_delete(request, deployment_id: int):
    deployment, membership = deployment_for(request.user, deployment_id, Role.ADMIN)
    form = DeleteForm(request.POST, expected=deployment.name)
    if not form.is_valid():
        context = selectors.deployment_context(deployment, membership, tab="options")
        context.update(_options_context(deployment, membership, delete_form=form))
        return render(request, "deployments/deployment_options.html", context, status=422)
    try:
        services.deployment_delete(deployment=deployment, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("deployment_options", deployment.pk)
    messages.success(request, f"Deleting “{deployment.name}” with all its storage.")
    return redirect("project", deployment.project_id)


@login_required
@require_GET
def deployment_describe(request, deployment_id: int, service_id: str):
    """A service's live Kubernetes objects as YAML."""
    deployment, _ = deployment_for(request.user, deployment_id)
    if service_id not in deployment.spec.service_ids():
        return HttpResponse(f"There is no component or add-on “{service_id}”.", status=404, content_type="text/plain")
    try:
        text = describe(
            get_cluster(), namespace=deployment.namespace, deployment_id=deployment.pk, service_id=service_id
        )
    except cluster_errors.ClusterError as error:
        text = f"# The cluster could not be asked: {error}\n"
    # The clone container's arguments hold the repository URL, which older projects may have with credentials.
    text = redact_credentials(text)
    return render(request, "deployments/_describe.html", {"service_id": service_id, "yaml": text})


@login_required
@require_POST
def deployment_reveal(request, deployment_id: int):
    """One variable's value, audited. Developers and admins only."""
    deployment, _ = deployment_for(request.user, deployment_id, Role.DEVELOPER)
    try:
        value = services.secret_reveal(
            deployment=deployment,
            service_id=request.POST.get("service", ""),
            name=request.POST.get("name", ""),
            actor=request.user,
        )
    except ValidationError as error:
        return HttpResponse(" ".join(error.messages), status=404, content_type="text/plain")
    return HttpResponse(render_to_string("deployments/_revealed.html", {"value": value}))


# ----------------------------------------------------------------------------- team members


@login_required
@require_http_methods(["GET", "POST"])
def team_members(request, team_id: int):
    team = get_object_or_404(Team, pk=team_id)
    membership = require_role(membership_for(request.user, team.pk), Role.VIEWER)
    if request.method == "POST":
        require_role(membership, Role.ADMIN)
        username = request.POST.get("username", "").strip()
        role = request.POST.get("role", "")
        user = get_user_model().objects.filter(username=username).first()
        try:
            if request.POST.get("remove"):
                services.member_remove(team=team, username=username, actor=request.user)
                messages.success(request, f"{username} removed from {team.name}.")
            elif user is None:
                messages.error(
                    request, f"There is no user “{username}”. An administrator creates accounts in the admin."
                )
            else:
                services.member_set_role(team=team, user=user, role=role, actor=request.user)
                messages.success(request, f"{username} is now {role} in {team.name}.")
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        # An admin who just removed themselves may no longer see this page.
        still_member = membership_for(request.user, team.pk) is not None
        target = reverse("team_members", args=[team.pk]) if still_member else reverse("projects")
        if request.htmx:
            return HttpResponseClientRedirect(target)
        return redirect(target)
    page = selectors.team_members_page(team, request.GET.get("page"))
    context = {
        "team": team,
        "page": page,
        "members": page.object_list,
        "can": selectors.Permissions.of(membership),
        "roles": Role.choices,
    }
    return render(request, "deployments/team_members.html", context)
