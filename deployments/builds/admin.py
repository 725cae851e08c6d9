"""Builds in the admin: read-only rows (builders move them forward), a cancel action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from deployments.builds import services
from deployments.builds.models import Build


@admin.register(Build)
class BuildAdmin(admin.ModelAdmin):
    list_display = (
        "pk",
        "deployment",
        "component",
        "short_sha",
        "state",
        "step_label",
        "runner",
        "trigger",
        "requested_at",
    )
    list_filter = ("state", "runner", "trigger")
    search_fields = ("commit_sha", "component", "deployment__name", "project__slug")
    list_select_related = ("deployment__project", "project")
    ordering = ("-requested_at", "-pk")
    actions = ("cancel",)
    readonly_fields = [field.name for field in Build._meta.fields]
    exclude = ("log",)

    def has_add_permission(self, request):
        return False  # builds are requested through a deployment ("Build the branch head now")

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Step")
    def step_label(self, build):
        return f"{build.step}/{build.steps} {build.step_text}" if build.steps else "–"

    @admin.action(description="Cancel (queued or running builds)")
    def cancel(self, request, queryset):
        cancelled, refused = [], []
        for build in queryset:
            try:
                services.build_cancel(
                    build_id=build.pk, reason=f"Cancelled in the admin by {request.user.get_username()}"
                )
                cancelled.append(f"#{build.pk}")
            except ValidationError as error:
                refused.append(f"#{build.pk}: {' '.join(error.messages)}")
        if cancelled:
            self.message_user(request, f"Cancelled {', '.join(cancelled)}.", messages.SUCCESS)
        if refused:
            self.message_user(request, "Not cancelled: " + "; ".join(refused), messages.WARNING)
