"""What the gateway keeps in the database: its host key, one row shared by every gateway replica."""

from __future__ import annotations

from django.db import models


class HostKey(models.Model):
    """The gateway's SSH host key (OpenSSH private key format). Generated once, never rotated silently."""

    name = models.CharField(max_length=32, unique=True, default="gateway")
    algorithm = models.CharField(max_length=32)
    private_key = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.algorithm}, {self.created_at:%Y-%m-%d})"
