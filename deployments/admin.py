"""Operators' view of teams, projects and deployments, and of what is recorded about them.

A deployment's desired state (name, branch, size, add-ons, environment, domains,
images, enabled) is editable: saving goes through the model's ``save()``, which
bumps the desired generation and reconciles on commit, and is audited. The
actions reconcile, restart and delete through the same services the dashboard
uses. Everything the worker and the watcher write (namespace, state,
generations, lease, statuses, CPU, operations, the audit log) is read-only, and
generated secrets are shown by name only, never by value.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import Count, F, Q
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from deployments import selectors, services
from deployments.forms import format_env_lines, parse_env_lines, unmask_env
from deployments.models import (
    ActivityEntry,
    CpuSample,
    Deployment,
    DeploymentState,
    DeploymentStatus,
    Health,
    Lease,
    Membership,
    Operation,
    Project,
    Role,
    Team,
    record_activity,
)
from deployments.naming import redact_credentials
from deployments.ssh.sessions import sessions_close_for_role

HEALTH_COLORS = {
    Health.GREEN: "#1f8a4c",
    Health.YELLOW: "#b7791f",
    Health.RED: "#c53030",
    Health.UNKNOWN: "#718096",
}
HEALTH_LABELS = dict(Health.choices)
STATE_COLORS = {
    DeploymentState.CREATING: HEALTH_COLORS[Health.YELLOW],
    DeploymentState.RUNNING: HEALTH_COLORS[Health.GREEN],
    DeploymentState.RESTARTING: HEALTH_COLORS[Health.YELLOW],
    DeploymentState.DELETING: HEALTH_COLORS[Health.RED],
    DeploymentState.DELETED: HEALTH_COLORS[Health.UNKNOWN],
    DeploymentState.FAILED: HEALTH_COLORS[Health.RED],
}
OPERATION_COLORS = {
    Operation.Status.PENDING: HEALTH_COLORS[Health.YELLOW],
    Operation.Status.RUNNING: HEALTH_COLORS[Health.YELLOW],
    Operation.Status.SUCCEEDED: HEALTH_COLORS[Health.GREEN],
    Operation.Status.FAILED: HEALTH_COLORS[Health.RED],
}
GONE = (DeploymentState.DELETING, DeploymentState.DELETED)
# The desired-state fields an operator may edit; all are in Deployment.DESIRED_FIELDS.
EDITABLE_FIELDS = (
    "name",
    "branch",
    "size",
    "enabled",
    "enabled_addons",
    "env_overrides",
    "custom_domains",
    "image_overrides",
)
SHOWN_OPERATIONS = 10
SHOWN_DEPLOYMENTS = 50


# ----------------------------------------------------------------------------- presentation helpers


def _admin_link(obj, text: str | None = None) -> str:
    """A link to ``obj``'s admin page when its model is registered, else plain text."""
    if obj is None:
        return "—"
    label = text if text is not None else str(obj)
    try:
        url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return format_html("{}", label)
    return format_html('<a href="{}">{}</a>', url, label)


def _badge(color: str, word: str, title: str = "") -> str:
    """A colour dot *and* a word: never colour alone."""
    return format_html(
        '<span title="{}" style="white-space: nowrap"><span style="color: {}" aria-hidden="true">●</span> {}</span>',
        title,
        color,
        word,
    )


def health_badge(health: str, reason: str = "") -> str:
    return _badge(
        HEALTH_COLORS.get(health, HEALTH_COLORS[Health.UNKNOWN]), HEALTH_LABELS.get(health, "Unknown"), reason
    )


def _status_of(deployment: Deployment) -> DeploymentStatus | None:
    # A missing reverse one-to-one raises RelatedObjectDoesNotExist, an AttributeError.
    return getattr(deployment, "status", None)


# ----------------------------------------------------------------------------- teams


class MembershipFormSet(forms.BaseInlineFormSet):
    def clean(self):
        """A team that has an admin keeps one (the rule `services.member_set_role` enforces)."""
        super().clean()
        team = self.instance
        if team.pk is None or not Membership.objects.filter(team=team, role=Role.ADMIN).exists():
            return
        remaining = [f.cleaned_data for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        if not any(data.get("role") == Role.ADMIN for data in remaining):
            raise ValidationError(f"{team.name} needs at least one admin: make someone else admin first.")


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipFormSet
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)
    extra = 0


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "member_count", "project_count", "created_at")
    search_fields = ("name", "slug")
    fields = ("name", "slug", "created_at")
    readonly_fields = ("created_at",)
    inlines = (MembershipInline,)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_count=Count("memberships", distinct=True),
                project_count=Count("projects", distinct=True),
            )
        )

    @admin.display(description="Members", ordering="member_count")
    def member_count(self, team):
        return team.member_count

    @admin.display(description="Projects", ordering="project_count")
    def project_count(self, team):
        return team.project_count

    def save_formset(self, request, form, formset, change):
        """Save the memberships and audit each change, as the dashboard's member services do."""
        super().save_formset(request, form, formset, change)
        if formset.model is not Membership:
            return
        team = form.instance
        changed = [*formset.new_objects, *(membership for membership, _ in formset.changed_objects)]
        for membership in changed:
            name = membership.user.get_username()
            sessions_close_for_role(
                user_id=membership.user_id, team_id=team.pk, role=membership.role, team_name=team.name
            )
            record_activity(
                action="team.member_set",
                message=f"{name} is {membership.role} in {team.name} (set in the admin)",
                actor=request.user,
                team=team,
            )
        for membership in formset.deleted_objects:
            name = membership.user.get_username()
            sessions_close_for_role(user_id=membership.user_id, team_id=team.pk, role=None, team_name=team.name)
            record_activity(
                action="team.member_removed",
                message=f"{name} removed from {team.name} (in the admin)",
                actor=request.user,
                team=team,
            )


# ----------------------------------------------------------------------------- projects


class ProjectAdminForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ("name", "repository")


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectAdminForm
    list_display = ("name", "slug", "team", "template", "shown_repository", "live_deployments", "created_at")
    list_filter = ("team", "template")
    search_fields = ("name", "slug", "repository", "team__name", "team__slug")
    list_select_related = ("team", "template")
    fields = ("name", "slug", "team", "template", "repository", "created_by", "created_at", "deployments_list")
    readonly_fields = ("slug", "team", "template", "created_by", "created_at", "deployments_list")

    def get_queryset(self, request):
        live = ~Q(deployments__state=DeploymentState.DELETED) & Q(deployments__isnull=False)
        return super().get_queryset(request).annotate(live_count=Count("deployments", filter=live))

    def get_form(self, request, obj=None, **kwargs):
        return super().get_form(request, obj, **{**kwargs, "fields": ProjectAdminForm.Meta.fields})

    def has_add_permission(self, request):
        return False  # created from the dashboard (`services.project_create` validates the slug and template)

    def has_delete_permission(self, request, obj=None):
        return False  # deployments and their tombstones reference it; the dashboard deletes empty projects

    @admin.display(description="Repository", ordering="repository")
    def shown_repository(self, project):
        return redact_credentials(project.repository)

    @admin.display(description="Live deployments", ordering="live_count")
    def live_deployments(self, project):
        return project.live_count

    @admin.display(description="Deployments")
    def deployments_list(self, project):
        deployments = list(
            project.deployments.select_related("status").order_by("state", "name")[: SHOWN_DEPLOYMENTS + 1]
        )
        if not deployments:
            return format_html('<span class="quiet">{}</span>', "None")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    _admin_link(d, d.name),
                    d.get_stage_display(),
                    _state_badge(d),
                    "—" if d.state == DeploymentState.DELETED else _health_of(d),
                )
                for d in deployments[:SHOWN_DEPLOYMENTS]
            ),
        )
        more = format_html("<p>{}</p>", "and more") if len(deployments) > SHOWN_DEPLOYMENTS else ""
        return format_html(
            "<table><thead><tr><th>Name</th><th>Stage</th><th>State</th><th>Health</th></tr></thead>"
            "<tbody>{}</tbody></table>{}",
            rows,
            more,
        )


# ----------------------------------------------------------------------------- deployments


def _state_badge(deployment: Deployment) -> str:
    if deployment.state == DeploymentState.DELETED:
        when = f"Deleted {deployment.deleted_at:%Y-%m-%d %H:%M} UTC" if deployment.deleted_at else "Deleted"
        return _badge(STATE_COLORS[DeploymentState.DELETED], "Deleted (tombstone)", when)
    return _badge(STATE_COLORS.get(deployment.state, "#718096"), deployment.get_state_display())


def _health_of(deployment: Deployment) -> str:
    status = _status_of(deployment)
    if status is None:
        return health_badge(Health.UNKNOWN, "No report from the cluster yet")
    return health_badge(status.health, status.reason)


class LifecycleFilter(admin.SimpleListFilter):
    """Live deployments by default; tombstones (deleted) only when asked for."""

    title = "lifecycle"
    parameter_name = "lifecycle"

    def lookups(self, request, model_admin):
        return (("live", "Live"), ("deleted", "Deleted (tombstones)"), ("all", "All"))

    def value(self):
        return super().value() or "live"

    def get_facet_counts(self, pk_attname, filtered_qs):
        # Counts would be taken over live deployments only (the default applies
        # whenever the parameter is absent), so this filter shows none.
        return {}

    def choices(self, changelist):
        # No Django "All" entry: an absent parameter means "Live" here.
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "deleted":
            return queryset.filter(state=DeploymentState.DELETED)
        if self.value() == "all":
            return queryset
        return queryset.exclude(state=DeploymentState.DELETED)


class TemplateVersionFilter(admin.SimpleListFilter):
    """Whether a deployment runs its template's current version (``Deployment.uses_current_template``)."""

    title = "template version"
    parameter_name = "template_version"

    def lookups(self, request, model_admin):
        return (("current", "The current version"), ("old", "An old version"))

    def queryset(self, request, queryset):
        current = F("project__template__current_version")
        if self.value() == "current":
            return queryset.filter(template_version=current)
        if self.value() == "old":
            return queryset.filter(project__template__current_version__isnull=False).exclude(template_version=current)
        return queryset


class BoundedJSONField(forms.JSONField):
    """A JSON field that refuses, with a message, what Python's parser cannot take: very deep nesting
    (a RecursionError) or a huge text."""

    MAX_LENGTH = 20_000

    def _parse(self, parse, value):
        if isinstance(value, str) and len(value) > self.MAX_LENGTH:
            raise ValidationError(f"Write at most {self.MAX_LENGTH} characters of JSON.", code="invalid")
        try:
            return parse(value)
        except RecursionError:
            raise ValidationError("This JSON is nested too deeply.", code="invalid") from None

    def to_python(self, value):
        return self._parse(super().to_python, value)

    def bound_data(self, data, initial):
        try:
            return self._parse(lambda value: super(BoundedJSONField, self).bound_data(value, initial), data)
        except ValidationError:
            return forms.fields.InvalidJSONInput(data[: self.MAX_LENGTH] if isinstance(data, str) else data)


class DeploymentAdminForm(forms.ModelForm):
    """The editable desired state, checked with the same validators the services use."""

    enabled_addons = forms.MultipleChoiceField(
        label="Optional add-ons",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "“%(value)s” is not an optional add-on of this template."},
    )
    env_overrides = forms.CharField(
        label="Environment overrides",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "vLargeTextField"}),
        help_text="One per line: <code>service.NAME=value</code>, e.g. <code>app.DEBUG=true</code>.",
    )
    custom_domains = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}),
        help_text=f"One per line. Each needs a CNAME to {settings.EDGE_HOST}.",
    )
    image_overrides = BoundedJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "vLargeTextField"}),
        help_text='{"component": "image:tag"}: run another image than the template\'s (staging and production).',
    )

    class Meta:
        model = Deployment
        fields = EDITABLE_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        deployment = self.instance
        # What the row held when the form was built: save_model writes only what differs.
        self.original = {name: getattr(deployment, name) for name in EDITABLE_FIELDS}
        spec = deployment.spec
        addons = self.fields["enabled_addons"]
        addons.choices = [(a.id, f"{a.name} ({a.id})") for a in spec.addons if a.toggleable]
        if not addons.choices:
            addons.help_text = "This template has no optional add-ons."
        # Secret values stay masked here too; left masked, they are kept (revealing is audited, on the Options tab).
        self.secrets = selectors.secret_overrides(deployment)
        self.initial["env_overrides"] = format_env_lines(deployment.env_overrides, secrets=self.secrets)
        self.initial["custom_domains"] = "\n".join(deployment.custom_domains)

    def clean_enabled_addons(self):
        return sorted(self.cleaned_data["enabled_addons"])

    def clean_env_overrides(self):
        return unmask_env(parse_env_lines(self.cleaned_data["env_overrides"]), self.secrets)

    def clean_custom_domains(self):
        return [d.strip() for d in self.cleaned_data["custom_domains"].splitlines() if d.strip()]

    def clean_image_overrides(self):
        images = self.cleaned_data["image_overrides"] or {}
        if not isinstance(images, dict) or not all(isinstance(v, str) for v in images.values()):
            raise ValidationError('Write a JSON object of images by component: {"component": "image:tag"}.')
        components = {c.id for c in self.instance.spec.components}
        problems = [f"There is no component “{c}”." for c in images if c not in components]
        problems += [f"“{image}” is not an image reference." for image in images.values() if image.split() != [image]]
        if problems:
            raise ValidationError(problems)
        return images

    def clean(self):
        """Check each changed field with the services' own validators; unchanged fields never block a save."""
        cleaned = super().clean()
        deployment = self.instance
        if deployment.state in GONE:
            raise ValidationError("This deployment is being deleted.")

        def changed(name: str) -> bool:
            return name in cleaned and cleaned[name] != self.original[name]

        if changed("name"):
            problems = services.deployment_name_problems(
                deployment.project, cleaned["name"], stage=deployment.stage, exclude=deployment
            )
            if problems:
                self.add_error("name", problems)
        if changed("branch"):
            for problem in services.branch_problems(cleaned["branch"]):
                self.add_error("branch", problem)
        if changed("custom_domains"):
            domains, problems = services.custom_domain_problems(
                cleaned["custom_domains"], team=deployment.project.team, exclude=deployment
            )
            if problems:
                self.add_error("custom_domains", problems)
            else:
                cleaned["custom_domains"] = domains
        if changed("env_overrides"):
            if problems := services.env_override_problems(deployment.spec, cleaned["env_overrides"]):
                self.add_error("env_overrides", problems)
        return cleaned

    def changed_fields(self) -> list[str]:
        return [name for name in EDITABLE_FIELDS if getattr(self.instance, name) != self.original[name]]


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    form = DeploymentAdminForm
    list_display = (
        "name_label",
        "project",
        "team",
        "stage",
        "state_label",
        "health",
        "template_version_label",
        "generations",
        "created_at",
    )
    list_filter = (
        LifecycleFilter,
        "stage",
        ("status__health", admin.ChoicesFieldListFilter),
        "state",
        ("project__team", admin.RelatedOnlyFieldListFilter),
        TemplateVersionFilter,
    )
    search_fields = ("name", "namespace", "project__name", "project__slug")
    list_select_related = ("project__team", "project__template", "template_version", "status")
    ordering = ("-created_at", "-pk")
    actions = ("reconcile_now", "build_now", "restart", "delete_permanently")
    fieldsets = (
        (
            "Deployment",
            {
                "fields": (
                    "project_link",
                    "team_link",
                    "name",
                    "stage",
                    "template_version_display",
                    "namespace",
                    "state_display",
                    "created_by",
                    "created_at",
                    "updated_at",
                    "deleted_at",
                )
            },
        ),
        (
            "Desired state",
            {
                "description": "Saving a change here reconciles the cluster, as an edit in the dashboard does.",
                "fields": (
                    "branch",
                    "size",
                    "enabled",
                    "enabled_addons",
                    "env_overrides",
                    "custom_domains",
                    "image_overrides",
                    "restart_marks",
                ),
            },
        ),
        ("Reconciliation", {"fields": ("generations_display", "lease")}),
        ("Generated secrets", {"fields": ("secret_names",)}),
        ("Status", {"fields": ("status_summary",)}),
        ("Recent operations", {"fields": ("recent_operations",)}),
    )
    readonly_fields = (
        "project_link",
        "team_link",
        "stage",
        "template_version_display",
        "namespace",
        "state_display",
        "created_by",
        "created_at",
        "updated_at",
        "deleted_at",
        "restart_marks",
        "generations_display",
        "lease",
        "secret_names",
        "status_summary",
        "recent_operations",
    )

    def has_add_permission(self, request):
        return False  # created from the dashboard: `services.deployment_create` picks the namespace and secrets

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.state in GONE:
            return False  # a deployment being deleted, or a tombstone, is history
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # a row delete would orphan the namespace: use the "Delete permanently" action

    def view_on_site(self, obj):
        if obj.state == DeploymentState.DELETED:
            return None
        return reverse("deployment", args=[obj.pk])

    # --- list columns -----------------------------------------------------------------
    @admin.display(description="Name", ordering="name")
    def name_label(self, deployment):
        style = "white-space: nowrap"
        if deployment.state == DeploymentState.DELETED:
            style += "; text-decoration: line-through"
        return format_html('<span style="{}">{}</span>', style, deployment.name)

    @admin.display(description="Team", ordering="project__team__name")
    def team(self, deployment):
        return deployment.project.team

    @admin.display(description="State", ordering="state")
    def state_label(self, deployment):
        return _state_badge(deployment)

    @admin.display(description="Health", ordering="status__health")
    def health(self, deployment):
        if deployment.state == DeploymentState.DELETED:
            return "—"
        return _health_of(deployment)

    @admin.display(description="Template version", ordering="template_version__version")
    def template_version_label(self, deployment):
        version = deployment.template_version.version
        if deployment.uses_current_template:
            return format_html('{} <span class="quiet">{}</span>', version, "(current)")
        return format_html('{} <strong style="color: {}">{}</strong>', version, HEALTH_COLORS[Health.YELLOW], "(old)")

    @admin.display(description="Applied / desired")
    def generations(self, deployment):
        text = f"{deployment.applied_generation} / {deployment.desired_generation}"
        if deployment.up_to_date or deployment.state in GONE:
            return text
        return format_html('<span title="{}">{} (behind)</span>', "A reconcile is pending or failing", text)

    # --- change page --------------------------------------------------------------------
    @admin.display(description="Project")
    def project_link(self, deployment):
        return _admin_link(deployment.project)

    @admin.display(description="Team")
    def team_link(self, deployment):
        return _admin_link(deployment.project.team)

    @admin.display(description="Template version")
    def template_version_display(self, deployment):
        version = deployment.template_version
        label = _admin_link(version, f"{version.template.name} {version.version} ({version.digest[:12]})")
        if deployment.uses_current_template:
            return format_html("{}: the current version", label)
        current = deployment.project.template.current_version
        return format_html("{}: an old version (current: {})", label, current.version if current else "none")

    @admin.display(description="State")
    def state_display(self, deployment):
        if deployment.state == DeploymentState.DELETED:
            return format_html(
                "{}: a tombstone kept for the activity log; nothing of it is left in the cluster.",
                _state_badge(deployment),
            )
        return _state_badge(deployment)

    @admin.display(description="Generations")
    def generations_display(self, deployment):
        state = "up to date" if deployment.up_to_date else "a reconcile is pending or failing"
        return f"Desired {deployment.desired_generation}, applied {deployment.applied_generation}: {state}"

    @admin.display(description="Lease")
    def lease(self, deployment):
        if not deployment.lease_owner:
            return "Free"
        return f"Held by {deployment.lease_owner} until {deployment.lease_until:%Y-%m-%d %H:%M:%S} UTC"

    @admin.display(description="Names")
    def secret_names(self, deployment):
        names = sorted(deployment.generated_secrets)
        if not names:
            return "None"
        listed = format_html_join(", ", "<code>{}</code>", ((name,) for name in names))
        return format_html(
            '{}<br><span class="help">{}</span>',
            listed,
            "Values are never shown here: reveal one from the deployment's Options tab (audited).",
        )

    @admin.display(description="Status")
    def status_summary(self, deployment):
        tree = selectors.status_tree(deployment)
        nodes = [
            {**node, "badge": health_badge(node.get("health", Health.UNKNOWN), node.get("reason", ""))}
            for node in selectors.tree_nodes({"nodes": {}, **tree})
        ]
        return render_to_string(
            "admin/deployments/_status_summary.html",
            {
                "tree": tree,
                "badge": health_badge(tree.get("health", Health.UNKNOWN), tree.get("reason", "")),
                "nodes": nodes,
                "status": _status_of(deployment),
            },
        )

    @admin.display(description="Operations")
    def recent_operations(self, deployment):
        operations = list(deployment.operations.select_related("requested_by")[:SHOWN_OPERATIONS])
        rows = [
            {
                "operation": op,
                "link": _admin_link(op, op.get_kind_display()),
                "badge": _badge(OPERATION_COLORS[op.status], op.get_status_display()),
            }
            for op in operations
        ]
        return render_to_string(
            "admin/deployments/_recent_operations.html",
            {
                "rows": rows,
                "operations_url": reverse("admin:deployments_operation_changelist")
                + f"?deployment__id__exact={deployment.pk}",
                "activity_url": reverse("admin:deployments_activityentry_changelist")
                + f"?deployment__id__exact={deployment.pk}",
            },
        )

    # --- saving -----------------------------------------------------------------------
    def save_model(self, request, obj, form, change):
        """Write only the edited desired-state fields, through the service the UI's edits share.

        The admin runs this inside the request's transaction: the reconcile is
        enqueued when it commits.
        """
        fields = form.changed_fields()
        if change and fields:
            try:
                services.deployment_admin_save(deployment=obj, fields=fields, actor=request.user)
            except ValidationError as error:  # lost a race for a host since the form was checked
                self.message_user(request, f"Not saved: {' '.join(error.messages)}", messages.ERROR)

    # --- actions ----------------------------------------------------------------------
    def _each(self, request, queryset, call, done: str) -> None:
        """Run ``call`` on each deployment; report successes together and each refusal as an error."""
        succeeded = []
        for deployment in queryset.select_related("project__team"):
            try:
                call(deployment)
            except ValidationError as error:
                self.message_user(request, f"{deployment}: {' '.join(error.messages)}", messages.ERROR)
            else:
                succeeded.append(str(deployment))
        if succeeded:
            self.message_user(request, f"{done} {', '.join(succeeded)}.", messages.SUCCESS)

    @admin.action(description="Reconcile now (apply the desired state to the cluster again)")
    def reconcile_now(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda d: services.deployment_reconcile(deployment=d, actor=request.user),
            "Reconcile requested for",
        )

    @admin.action(description="Build the branch head now (staging and production)")
    def build_now(self, request, queryset):
        from deployments.builds.models import Build
        from deployments.builds.services import builds_request

        self._each(
            request,
            queryset,
            lambda d: builds_request(deployment=d, trigger=Build.Trigger.ADMIN, triggered_by=request.user),
            "Building",
        )

    @admin.action(description="Restart all services")
    def restart(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda d: services.deployment_restart(deployment=d, actor=request.user),
            "Restarting",
        )

    @admin.action(description="Delete permanently (namespace and all storage)")
    def delete_permanently(self, request, queryset):
        deployments = list(queryset.select_related("project__team", "template_version", "status"))
        if request.POST.get("post") == "yes":
            self._each(
                request,
                queryset,
                lambda d: services.deployment_delete(deployment=d, actor=request.user),
                "Deleting, with all their storage:",
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Delete permanently?",
            "subtitle": None,
            "opts": self.model._meta,
            "items": [
                {
                    "deployment": d,
                    "volumes": selectors.deployment_volumes(d) if d.state != DeploymentState.DELETED else [],
                }
                for d in deployments
            ],
            "deployments": deployments,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action": "delete_permanently",
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/deployments/deployment/delete_permanently_confirmation.html", context)


# ----------------------------------------------------------------------------- records (read-only)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the worker, the watcher or the services: operators look, never touch."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Operation)
class OperationAdmin(ReadOnlyAdmin):
    list_display = (
        "deployment",
        "kind",
        "target",
        "status_label",
        "requested_by",
        "requested_at",
        "attempts",
        "short_message",
    )
    list_display_links = ("kind",)
    list_filter = ("kind", "status")
    search_fields = ("deployment__name", "deployment__namespace", "target", "message")
    list_select_related = ("deployment__project", "requested_by")
    date_hierarchy = "requested_at"
    fields = (
        "deployment",
        "kind",
        "target",
        "status",
        "requested_by",
        "requested_at",
        "started_at",
        "finished_at",
        "attempts",
        "generation",
        "message",
    )

    @admin.display(description="Status", ordering="status")
    def status_label(self, operation):
        return _badge(OPERATION_COLORS[operation.status], operation.get_status_display())

    @admin.display(description="Message")
    def short_message(self, operation):
        return operation.message if len(operation.message) <= 120 else operation.message[:119] + "…"


@admin.register(ActivityEntry)
class ActivityEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "shown_message", "actor", "team", "project", "deployment")
    list_filter = ("team",)
    search_fields = (
        "action",
        "message",
        "actor__username",
        "deployment__name",
        "deployment__namespace",
        "project__name",
    )
    list_select_related = ("actor", "team", "project", "deployment__project")
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = ("created_at", "action", "shown_message", "actor", "team", "project", "deployment", "data")
    readonly_fields = ("shown_message",)

    @admin.display(description="Message")
    def shown_message(self, entry):
        return redact_credentials(entry.message)  # entries written before URLs with credentials were refused


@admin.register(DeploymentStatus)
class DeploymentStatusAdmin(ReadOnlyAdmin):
    list_display = ("deployment", "health_label", "reason", "since", "observed_at", "cpu_millicores")
    list_filter = ("health",)
    search_fields = ("deployment__name", "deployment__namespace")
    list_select_related = ("deployment__project",)
    fields = ("deployment", "health", "reason", "since", "observed_at", "cluster_error", "cpu_millicores",
              "cpu_sampled_at", "updated_at", "tree")  # fmt: skip

    @admin.display(description="Health", ordering="health")
    def health_label(self, status):
        return health_badge(status.health, status.reason)


@admin.register(CpuSample)
class CpuSampleAdmin(ReadOnlyAdmin):
    list_display = ("deployment", "tier", "bucket_start", "millicores", "count")
    list_filter = ("tier",)
    search_fields = ("deployment__name", "deployment__namespace")
    list_select_related = ("deployment__project",)
    show_full_result_count = False

    @admin.display(description="Average millicores")
    def millicores(self, sample):
        return f"{sample.millicores:.1f}"


@admin.register(Lease)
class LeaseAdmin(ReadOnlyAdmin):
    list_display = ("name", "holder", "expires_at")
    search_fields = ("name", "holder")
