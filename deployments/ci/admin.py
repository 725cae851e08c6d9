"""Operators see which projects have a build token, a webhook secret, a deploy key or an HTTPS token, and can revoke
them (through the services, audited). Never a secret: tokens are hashes, the rest stays sealed."""

from __future__ import annotations

from django.contrib import admin, messages

from deployments.admin import ReadOnlyAdmin
from deployments.ci import services
from deployments.ci.models import BuildToken, DeployKey, RepositoryToken, WebhookSecret


class _RevocableAdmin(ReadOnlyAdmin):
    list_select_related = ("project__team", "created_by")
    search_fields = ("project__name", "project__slug", "project__team__slug")
    revoke = None  # the service that removes one, by project
    actions = ["revoke_selected"]

    @admin.action(description="Revoke the selected (audited; the project's admins can create new ones)")
    def revoke_selected(self, request, queryset):
        rows = list(queryset.select_related("project"))
        for row in rows:
            type(self).revoke(project=row.project, actor=request.user)
        self.message_user(request, f"Revoked {len(rows)}.", messages.SUCCESS)

    def get_actions(self, request):
        # Read-only rows still take the revoke action (delete permission is not what it needs).
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(BuildToken)
class BuildTokenAdmin(_RevocableAdmin):
    list_display = ("project", "hint", "created_by", "created_at", "last_used_at")
    fields = ("project", "hint", "created_by", "created_at", "last_used_at")
    revoke = staticmethod(services.build_token_revoke)


@admin.register(WebhookSecret)
class WebhookSecretAdmin(_RevocableAdmin):
    list_display = ("project", "created_by", "created_at", "last_delivery_at")
    fields = ("project", "created_by", "created_at", "last_delivery_at")
    revoke = staticmethod(services.webhook_secret_revoke)


@admin.register(DeployKey)
class DeployKeyAdmin(_RevocableAdmin):
    list_display = ("project", "fingerprint", "created_by", "created_at")
    fields = ("project", "fingerprint", "public_key", "created_by", "created_at")
    revoke = staticmethod(services.deploy_key_delete)


@admin.register(RepositoryToken)
class RepositoryTokenAdmin(_RevocableAdmin):
    list_display = ("project", "hint", "username", "created_by", "created_at")
    fields = ("project", "hint", "username", "created_by", "created_at")
    revoke = staticmethod(services.repository_token_delete)
