"""A project's secrets for building: the CI's build token, the push webhook's secret and the
deploy key or HTTPS token clone steps use for a private repository. One of each per project; rotating
replaces it.

Each is shown in full once, when created (the deploy key's public half stays visible: it is not a
secret). How each is stored, and why, is in `deployments.ci.sealing`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class BuildToken(models.Model):
    """The bearer token an external CI reports this project's builds with (docs/api.md)."""

    project = models.OneToOneField("deployments.Project", on_delete=models.CASCADE, related_name="build_token")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token; the token is not kept.")
    hint = models.CharField(max_length=16, help_text="The token's first characters, to tell tokens apart.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Build token {self.hint}… of {self.project}"


class WebhookSecret(models.Model):
    """The secret GitHub signs this project's push webhooks with (HMAC-SHA256), sealed."""

    project = models.OneToOneField("deployments.Project", on_delete=models.CASCADE, related_name="webhook_secret")
    sealed = models.TextField(help_text="The secret, sealed with SECRETS_ENCRYPTION_KEY.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_delivery_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Webhook secret of {self.project}"


class DeployKey(models.Model):
    """An ed25519 key pair: the public half goes to the repository host, the private half (sealed)
    into a Secret in each deployment's namespace, mounted into the clone steps."""

    project = models.OneToOneField("deployments.Project", on_delete=models.CASCADE, related_name="deploy_key")
    public_key = models.TextField()
    fingerprint = models.CharField(max_length=80)
    sealed_private_key = models.TextField(help_text="OpenSSH private key, sealed with SECRETS_ENCRYPTION_KEY.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Deploy key {self.fingerprint} of {self.project}"


class RepositoryToken(models.Model):
    """A token an https:// repository takes as its password (a GitHub fine-grained token with read
    access to contents, a GitLab deploy token, a Bitbucket access token), sealed. Clone steps get
    it from a Secret through ``GIT_ASKPASS``, never in the URL."""

    project = models.OneToOneField("deployments.Project", on_delete=models.CASCADE, related_name="repository_token")
    username = models.CharField(max_length=100, help_text="The user name the host wants with the token.")
    sealed_token = models.TextField(help_text="The token, sealed with SECRETS_ENCRYPTION_KEY.")
    hint = models.CharField(max_length=16, help_text="The token's first characters, to tell tokens apart.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Repository token {self.hint}… of {self.project}"
