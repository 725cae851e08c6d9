"""Small presentation helpers for the dashboard templates."""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from deployments.charts import format_millicores
from deployments.models import Health

register = template.Library()

HEALTH_LABELS = dict(Health.choices)


@register.filter
def health_label(value: str) -> str:
    return HEALTH_LABELS.get(value, "Unknown")


@register.filter
def since(value) -> str:
    """ "3 minutes" from an ISO timestamp or a datetime ("just now" under a minute)."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if (timezone.now() - moment).total_seconds() < 60:
        return "just now"
    return timesince(moment).split(",")[0] + " ago"


@register.filter
def iso_time(value) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.isoformat() if moment else ""


@register.filter
def millicores(value) -> str:
    return "–" if value in (None, "") else format_millicores(float(value))
