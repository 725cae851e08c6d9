"""Small presentation helpers for the dashboard templates."""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html

from deployments.charts import format_bytes, format_millicores
from deployments.models import Health
from deployments.naming import redact_credentials as _redact_credentials

register = template.Library()

HEALTH_LABELS = dict(Health.choices)


@register.filter
def redact_credentials(value: str) -> str:
    """A URL (or a text with URLs) without the credentials some carry: ``https://***@host/…``."""
    return _redact_credentials(str(value or ""))


@register.filter
def minutes(value) -> str:
    """A timedelta as whole minutes, in words: "15 minutes"."""
    count = max(1, round(value.total_seconds() / 60))
    return f"{count} minute{'s' if count != 1 else ''}"


@register.filter
def health_label(value: str) -> str:
    return HEALTH_LABELS.get(value, "Unknown")


@register.filter
def health_badge(value: str):
    """The health's coloured dot with its word: never the colour alone. A filter, not an
    include, because long lists (a project's rows, 50 containers) render one per item."""
    health = value or "unknown"
    return format_html(
        '<span class="health health-{}"><span class="dot" aria-hidden="true"></span>{}</span>',
        health,
        health_label(health),
    )


SINCE_UNITS = (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400), ("day", 86400), ("hour", 3600))


@register.filter
def since(value) -> str:
    """ "3 minutes ago" from an ISO timestamp or a datetime ("just now" under a minute).

    Its largest unit only, as people say it; computed here rather than with
    Django's timesince, which costs several times more in lists of hundreds of rows.
    """
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    seconds = (timezone.now() - moment).total_seconds()
    if seconds < 60:
        return "just now"
    unit, size = next(((unit, size) for unit, size in SINCE_UNITS if seconds >= size), ("minute", 60))
    count = int(seconds // size)
    return f"{count} {unit}{'' if count == 1 else 's'} ago"


@register.filter
def iso_time(value) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.isoformat() if moment else ""


@register.filter
def millicores(value) -> str:
    return "–" if value in (None, "") else format_millicores(float(value))


@register.filter
def bytes_size(value) -> str:
    return "–" if value in (None, "") else format_bytes(float(value))


@register.filter
def get_item(mapping, key):
    """``mapping[key]``, or an empty list when ``mapping`` is missing or has no such key."""
    if not mapping:
        return []
    return mapping.get(key, [])
