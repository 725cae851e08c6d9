"""Users' SSH public keys, the gateway's host key, and one row per SSH session (the audit).

A key's fingerprint is unique across the installation: one key belongs to one
user, enforced by the database whatever the checks before it said.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class SSHKey(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ssh_keys")
    name = models.CharField(max_length=100)
    public_key = models.TextField(help_text='"type base64", as in authorized_keys (no options, no comment).')
    key_type = models.CharField(max_length=32)
    bits = models.PositiveIntegerField()
    fingerprint = models.CharField(max_length=64, unique=True, help_text='"SHA256:…", as `ssh-keygen -l` shows it.')
    added_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["user", "name"]
        verbose_name = "SSH key"
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="unique_ssh_key_name_per_user")]

    def __str__(self) -> str:
        return f"{self.name} ({self.fingerprint})"


class SSHHostKey(models.Model):
    """The gateway's host key: generated once, kept, so clients can pin it (`known_hosts`)."""

    name = models.CharField(max_length=32, unique=True, default="gateway")
    algorithm = models.CharField(max_length=32)
    private_key = models.TextField(editable=False, help_text="OpenSSH private key format.")
    public_key = models.TextField(editable=False)
    fingerprint = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "SSH host key"

    def __str__(self) -> str:
        return f"{self.algorithm} {self.fingerprint}"


class SSHSessionQuerySet(models.QuerySet):
    def open(self):
        return self.filter(ended_at__isnull=True)


class SSHSession(models.Model):
    """One SSH session through the gateway: who, with which key, into what, and how it ended.

    ``close_requested_at``/``close_reason``: a service asked the gateway to end it
    (key removed, member removed or demoted, deployment disabled or deleted).
    ``seen_at``: the last time a gateway said it still holds the session.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="ssh_sessions"
    )
    username = models.CharField(max_length=150, help_text="The Diploi user, kept when the account goes.")
    ssh_user = models.CharField(max_length=200, help_text="The SSH user name asked for.")
    key_fingerprint = models.CharField(max_length=64)
    deployment = models.ForeignKey(
        "deployments.Deployment", null=True, blank=True, on_delete=models.SET_NULL, related_name="ssh_sessions"
    )
    component = models.CharField(max_length=63)
    pod = models.CharField(max_length=253)
    source_address = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    exit_status = models.IntegerField(null=True, blank=True)
    bytes_in = models.BigIntegerField(default=0, help_text="From the client into the container.")
    bytes_out = models.BigIntegerField(default=0, help_text="From the container to the client.")
    end_reason = models.CharField(max_length=300, blank=True, help_text="How it ended, as the gateway saw it.")
    close_requested_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=300, blank=True)

    objects = SSHSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = "SSH session"
        indexes = [
            models.Index(fields=["deployment", "-started_at"]),
            models.Index(fields=["user"], condition=Q(ended_at__isnull=True), name="ssh_open_by_user"),
            models.Index(fields=["deployment"], condition=Q(ended_at__isnull=True), name="ssh_open_by_deployment"),
        ]

    def __str__(self) -> str:
        return f"{self.username} → {self.ssh_user} ({self.started_at:%Y-%m-%d %H:%M})"

    @property
    def is_open(self) -> bool:
        return self.ended_at is None
