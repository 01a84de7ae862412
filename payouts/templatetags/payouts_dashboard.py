from django import template

from audit.selectors import open_alerts
from payouts.selectors import dashboard_figures

register = template.Library()


@register.inclusion_tag("payouts/dashboard_widget.html")
def payouts_widget() -> dict:
    return {**dashboard_figures(), "alerts": list(open_alerts().filter(kind__startswith="payout_")[:10])}
