"""The last answer of each deployment's status URL, as the poller read it.

One row per deployment, written by the poller only when what it read changed
(other items, another reason, the app falling silent or answering again), and read
by the watcher into the status tree (`cluster.status`), so the stored status (and
every list and count made from it) includes what the app says of itself.
"""

from __future__ import annotations

from django.db import models


class AppStatusReport(models.Model):
    deployment = models.OneToOneField(
        "deployments.Deployment", on_delete=models.CASCADE, primary_key=True, related_name="app_status"
    )
    # The parsed items ({identifier, name, description, status, message, pending}), as last answered.
    items = models.JSONField(default=list, blank=True)
    # Why the status is unknown ("" when the last request was answered in Diploi's format).
    error = models.CharField(max_length=500, blank=True)
    # Since when the status URL has not answered well: the grace period counts from here.
    failing_since = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField()  # when the poller last wrote a different answer

    class Meta:
        verbose_name = "app status report"

    def __str__(self) -> str:
        return f"app status of deployment {self.deployment_id}: {self.error or f'{len(self.items)} items'}"

    def as_observed(self) -> dict:
        """What the status tree is computed from (plain data: `cluster.status` is pure)."""
        return {
            "items": list(self.items or []),
            "error": self.error,
            "failing_since": self.failing_since,
        }
