from django.contrib import admin

from deployments.actions.models import ActionRun


@admin.register(ActionRun)
class ActionRunAdmin(admin.ModelAdmin):
    """Read-only: runs are started and cancelled from the deployment's pages (their services)."""

    list_display = ("action", "deployment", "state", "exit_status", "pod", "requested_by", "requested_at")
    list_filter = ("state",)
    search_fields = ("action", "deployment__name", "pod")
    readonly_fields = [field.name for field in ActionRun._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
