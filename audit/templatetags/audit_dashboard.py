"""How the admin names beacons and their alerts to finance staff (`{% load audit_dashboard %}`).

The figures are read by selectors and passed in (the index: config.selectors.attention_summary);
these tags only word them.
"""

from django import template

register = template.Library()

# Shown wherever alerts are (the admin index's summary, audit/alerts_widget.html).
ALERT_EXPLANATION = (
    "An alert means the system refused something or lost a race (two people or jobs acting on the same "
    "item at once) more often than usual in an hour, or a money safety check failed; acknowledge it once "
    "you have looked."
)


@register.filter
def beacon_kind_label(kind: str) -> str:
    """'payout_race_lost' -> 'Payout race lost'."""
    return kind.replace("_", " ").strip().capitalize()


@register.simple_tag
def alert_explanation() -> str:
    return ALERT_EXPLANATION
