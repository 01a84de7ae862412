from datetime import timedelta

from django import template
from django.utils import timezone

from audit import selectors

register = template.Library()


@register.inclusion_tag("audit/alerts_widget.html")
def race_safety_widget() -> dict:
    now = timezone.now()
    return {
        "alerts": list(selectors.open_alerts()[:10]),
        "beacons_24h": selectors.beacon_totals(since=now - timedelta(hours=24))[:10],
        "outcomes_24h": selectors.beacon_counts_by_outcome(since=now - timedelta(hours=24)),
        "transitions": selectors.transition_counts(now=now),
    }
