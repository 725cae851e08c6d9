"""Operators' view of the catalog: templates (toggle `enabled`, everything else read-only) and versions.

Templates come from files (`sync_templates`), so nothing here adds, edits or
deletes a spec; deployments reference versions, so nothing is deleted at all.
"""

from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from templates_catalog import selectors
from templates_catalog.models import Template, TemplateVersion
from templates_catalog.views import overview_context

SHOWN_DEPLOYMENTS = 25


def _admin_link(obj, text: str | None = None) -> str:
    """A link to ``obj``'s admin page when its model is registered, else plain text."""
    label = text if text is not None else str(obj)
    try:
        url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return format_html("{}", label)
    return format_html('<a href="{}">{}</a>', url, label)


def _deployment_list(deployments) -> str:
    rows = list(deployments[: SHOWN_DEPLOYMENTS + 1])
    if not rows:
        return format_html('<span class="quiet">{}</span>', "None")
    shown = format_html_join(
        ", ", "{}", ((_admin_link(d, f"{d.project.slug}/{d.name}"),) for d in rows[:SHOWN_DEPLOYMENTS])
    )
    if len(rows) > SHOWN_DEPLOYMENTS:
        shown = format_html("{} and more", shown)
    return shown


def _spec_overview(version: TemplateVersion | None) -> str:
    if version is None:
        return format_html('<span class="quiet">{}</span>', "No valid version loaded yet.")
    html = render_to_string("templates_catalog/_spec_overview.html", overview_context(version.spec))
    return format_html('<div class="catalog-admin">{}</div>', html)


class TemplateVersionInline(admin.TabularInline):
    model = TemplateVersion
    fields = ("version_link", "digest_short", "created_at", "is_current", "deployments_using")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ("-created_at", "-pk")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Version")
    def version_link(self, version):
        return _admin_link(version, version.version)

    @admin.display(description="Digest")
    def digest_short(self, version):
        return format_html('<code title="{}">{}</code>', version.digest, version.digest[:12])

    @admin.display(description="Current", boolean=True)
    def is_current(self, version):
        return version.template.current_version_id == version.pk

    @admin.display(description="Deployments using it")
    def deployments_using(self, version):
        return _deployment_list(selectors.deployments_of_version(version))


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        "enabled",
        "validation_state",
        "current_version_link",
        "deployment_count",
        "outdated_count",
        "last_synced_at",
    )
    list_display_links = ("name",)
    list_editable = ("enabled",)
    list_filter = ("enabled", "validation")
    search_fields = ("name", "slug", "description")
    fieldsets = (
        (None, {"fields": ("name", "slug", "enabled", "description")}),
        (
            "Loading",
            {
                "fields": (
                    "validation_state",
                    "last_error_text",
                    "current_version_link",
                    "source_path",
                    "last_synced_at",
                    "created_at",
                )
            },  # fmt: skip
        ),
        ("Deployments", {"fields": ("deployment_count", "outdated_deployments_list")}),
        ("Parsed spec (current version)", {"fields": ("spec_overview",)}),
        ("Source (current version)", {"classes": ("collapse",), "fields": ("source_text",)}),
    )
    readonly_fields = (
        "name",
        "slug",
        "description",
        "validation_state",
        "last_error_text",
        "current_version_link",
        "source_path",
        "last_synced_at",
        "created_at",
        "deployment_count",
        "outdated_deployments_list",
        "spec_overview",
        "source_text",
    )
    inlines = (TemplateVersionInline,)
    actions = ("enable_templates", "disable_templates")

    class Media:
        css = {"all": ("css/catalog.css",)}

    def get_queryset(self, request):
        return selectors.templates_with_usage()

    def has_add_permission(self, request):
        return False  # templates come from files: `manage.py sync_templates`

    def has_delete_permission(self, request, obj=None):
        return False  # deployments reference versions; disable instead

    @admin.display(description="Validation", ordering="validation")
    def validation_state(self, template):
        color = "#1f8a4c" if template.validation == Template.Validation.VALID else "#c53030"
        return format_html('<strong style="color: {}">{}</strong>', color, template.get_validation_display())

    @admin.display(description="Last error")
    def last_error_text(self, template):
        if not template.last_error:
            return "—"
        return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', template.last_error)

    @admin.display(description="Current version", ordering="current_version__created_at")
    def current_version_link(self, template):
        version = template.current_version
        if version is None:
            return "—"
        return _admin_link(version, f"{version.version} ({version.digest[:12]})")

    @admin.display(description="Deployments", ordering="deployment_count")
    def deployment_count(self, template):
        return getattr(template, "deployment_count", 0)

    @admin.display(description="On an old version", ordering="outdated_count")
    def outdated_count(self, template):
        return getattr(template, "outdated_count", 0)

    @admin.display(description="Deployments on an old version")
    def outdated_deployments_list(self, template):
        outdated = list(selectors.outdated_deployments(template=template)[: SHOWN_DEPLOYMENTS + 1])
        if not outdated:
            return format_html('<span class="quiet">{}</span>', "None: every deployment runs the current version.")
        rows = format_html_join(
            "",
            "<li>{} runs {}</li>",
            (
                (
                    _admin_link(d, f"{d.project.slug}/{d.name}"),
                    f"{d.template_version.version} ({d.template_version.digest[:12]})",
                )  # fmt: skip
                for d in outdated[:SHOWN_DEPLOYMENTS]
            ),
        )
        more = format_html("<li>{}</li>", "and more") if len(outdated) > SHOWN_DEPLOYMENTS else ""
        return format_html('<ul style="margin: 0; padding-left: 1.2em">{}{}</ul>', rows, more)

    @admin.display(description="Spec")
    def spec_overview(self, template):
        return _spec_overview(template.current_version)

    @admin.display(description="YAML")
    def source_text(self, template):
        if template.current_version is None:
            return "—"
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', template.current_version.source)

    @admin.action(description="Enable selected templates")
    def enable_templates(self, request, queryset):
        count = Template.objects.filter(pk__in=queryset.values("pk")).update(enabled=True)
        self.message_user(request, f"Enabled {count} template(s).", messages.SUCCESS)

    @admin.action(description="Disable selected templates (hidden from new projects)")
    def disable_templates(self, request, queryset):
        count = Template.objects.filter(pk__in=queryset.values("pk")).update(enabled=False)
        self.message_user(request, f"Disabled {count} template(s).", messages.SUCCESS)


@admin.register(TemplateVersion)
class TemplateVersionAdmin(admin.ModelAdmin):
    list_display = ("template", "version", "digest_short", "created_at", "is_current", "deployment_count")
    list_filter = ("template",)
    search_fields = ("template__slug", "template__name", "version", "digest")
    list_select_related = ("template",)
    fields = ("template", "version", "digest", "created_at", "is_current", "deployments_using", "spec_overview",
              "source_text")  # fmt: skip
    readonly_fields = fields

    class Media:
        css = {"all": ("css/catalog.css",)}

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # read-only: versions are immutable

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Digest")
    def digest_short(self, version):
        return format_html('<code title="{}">{}</code>', version.digest, version.digest[:12])

    @admin.display(description="Current", boolean=True)
    def is_current(self, version):
        return version.template.current_version_id == version.pk

    @admin.display(description="Deployments")
    def deployment_count(self, version):
        return selectors.deployments_of_version(version).count()

    @admin.display(description="Deployments using it")
    def deployments_using(self, version):
        return _deployment_list(selectors.deployments_of_version(version))

    @admin.display(description="Spec")
    def spec_overview(self, version):
        return _spec_overview(version)

    @admin.display(description="YAML")
    def source_text(self, version):
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', version.source)
