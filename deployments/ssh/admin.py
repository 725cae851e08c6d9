"""Operators' view of SSH: keys (added and removed through the services), sessions, the host key."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from deployments.ssh.models import SSHHostKey, SSHKey, SSHSession
from deployments.ssh.services import ssh_key_add, ssh_key_problems, ssh_key_remove
from deployments.ssh.sessions import sessions_close_request


class SSHKeyAddForm(forms.ModelForm):
    public_key = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One authorized_keys line: ed25519, ecdsa, or rsa of 2048 bits or more.",
    )

    class Meta:
        model = SSHKey
        fields = ("user", "name", "public_key")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False
        self.fields["user"].queryset = get_user_model().objects.order_by("username")

    def _post_clean(self):
        # The service's checks, not the model's: it parses the key and fills in type, bits, fingerprint.
        user = self.cleaned_data.get("user")
        if user is None:
            return
        _, name, problems = ssh_key_problems(
            user=user, name=self.cleaned_data.get("name", ""), public_key=self.cleaned_data.get("public_key", "")
        )
        for field, errors in problems.items():
            self.add_error(field, errors)
        self.cleaned_data["name"] = name


@admin.register(SSHKey)
class SSHKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "key_type", "bits", "fingerprint", "added_at", "last_used_at")
    list_filter = ("key_type",)
    search_fields = ("name", "fingerprint", "user__username")
    list_select_related = ("user",)
    readonly_fields = ("user", "name", "key_type", "bits", "fingerprint", "public_key", "added_at", "last_used_at")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = SSHKeyAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def has_change_permission(self, request, obj=None):
        # Keys are added and removed, never edited: viewing is all a change page offers.
        return False

    def save_model(self, request, obj, form, change):
        try:
            added = ssh_key_add(
                user=form.cleaned_data["user"],
                name=form.cleaned_data["name"],
                public_key=form.cleaned_data["public_key"],
                actor=request.user,
            )
        except ValidationError as error:
            # A race with another insert after the form's checks: say so instead of failing.
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return
        obj.pk, obj.fingerprint = added.pk, added.fingerprint

    def delete_model(self, request, obj):
        ssh_key_remove(user=obj.user, fingerprint=obj.fingerprint, actor=request.user)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for key in queryset.select_related("user"):
                ssh_key_remove(user=key.user, fingerprint=key.fingerprint, actor=request.user)


class OpenFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return (("1", "Open"), ("0", "Ended"))

    def queryset(self, request, queryset):
        if self.value() == "1":
            return queryset.open()
        if self.value() == "0":
            return queryset.filter(ended_at__isnull=False)
        return queryset


@admin.register(SSHSession)
class SSHSessionAdmin(admin.ModelAdmin):
    list_display = (
        "started_at",
        "username",
        "ssh_user",
        "deployment",
        "pod",
        "source_address",
        "ended_at",
        "exit_status",
        "bytes_in",
        "bytes_out",
        "close_reason",
    )
    list_filter = (OpenFilter,)
    search_fields = ("username", "ssh_user", "key_fingerprint", "pod", "source_address")
    list_select_related = ("deployment__project",)
    date_hierarchy = "started_at"
    actions = ("close_sessions",)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in SSHSession._meta.fields]

    def has_add_permission(self, request):
        return False  # the gateway records sessions

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the audit is kept

    def has_close_permission(self, request):
        return request.user.has_perm("ssh.change_sshsession")

    @admin.action(description="Close the selected sessions", permissions=["close"])
    def close_sessions(self, request, queryset):
        count = sessions_close_request(
            session_ids=queryset.values_list("pk", flat=True), reason="closed by an operator"
        )
        self.message_user(request, f"Asked the gateway to close {count} open session(s).")


@admin.register(SSHHostKey)
class SSHHostKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "algorithm", "fingerprint", "created_at")
    fields = ("name", "algorithm", "fingerprint", "public_key", "created_at")  # never the private key
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # generated by the gateway

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
