"""The dashboard's template filters."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deployments.templatetags.diploi import health_badge, since


@pytest.mark.parametrize(
    ("ago", "said"),
    [
        (timedelta(seconds=59), "just now"),
        (timedelta(seconds=60), "1 minute ago"),
        (timedelta(minutes=59, seconds=59), "59 minutes ago"),
        (timedelta(minutes=90), "1 hour ago"),
        (timedelta(hours=23), "23 hours ago"),
        (timedelta(days=2, hours=5), "2 days ago"),
        (timedelta(days=15), "2 weeks ago"),
        (timedelta(days=61), "2 months ago"),
        (timedelta(days=800), "2 years ago"),
    ],
)
def test_since_says_the_largest_unit(ago, said):
    assert since(timezone.now() - ago) == said


def test_since_reads_iso_timestamps_and_nothing():
    assert since((timezone.now() - timedelta(hours=3)).isoformat()) == "3 hours ago"
    assert since(None) == "" and since("") == ""


def test_health_badge_pairs_the_colour_with_its_word():
    assert health_badge("red") == (
        '<span class="health health-red"><span class="dot" aria-hidden="true"></span>Failing</span>'
    )
    assert "health-unknown" in health_badge(None) and "Unknown" in health_badge("")
