"""Which deployment holds which public host: one row per host, unique across the installation.

The unique constraint on ``host`` is what keeps two tenants from ever sharing
a host (and so each other's traffic and certificates): claims are written in
the same transaction as the deployment change that needs them, and a second
claim of a host fails in the database, whatever the checks before it said.
"""

from __future__ import annotations

from django.db import models


class HostClaim(models.Model):
    class Kind(models.TextChoices):
        PLATFORM = "platform", "Public host (from the template)"
        CUSTOM = "custom", "Custom domain"

    host = models.CharField(max_length=253, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    deployment = models.ForeignKey("deployments.Deployment", on_delete=models.CASCADE, related_name="host_claims")
    team = models.ForeignKey("deployments.Team", on_delete=models.CASCADE, related_name="host_claims")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["host"]
        indexes = [models.Index(fields=["team", "kind"])]
        constraints = [
            # Stored hosts are normalized (lower case, no trailing dot): refuse anything else outright.
            models.CheckConstraint(
                condition=~models.Q(host__endswith=".") & models.Q(host__regex=r"^[a-z0-9.-]+$"),
                name="host_claim_normalized",
            )
        ]

    def __str__(self) -> str:
        return f"{self.host} ({self.get_kind_display()}) → {self.deployment_id}"
