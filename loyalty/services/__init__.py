"""Every write of the loyalty domain. See each module's docstring for the safety layers it uses."""

from loyalty.services.backfill import BackfillReport, revoke_duplicate_loyalty_codes
from loyalty.services.emails import send_loyalty_email
from loyalty.services.grants import ApplyReport, GrantOutcome, apply_loyalty, finish_discount
from loyalty.services.revocations import close_revoked_code, revoke_discount, revoke_live_discounts
from loyalty.services.subscriptions import (
    SubscriptionSnapshot,
    read_subscription,
    sync_subscription,
    take_read_ticket,
)

__all__ = [
    "ApplyReport",
    "BackfillReport",
    "GrantOutcome",
    "SubscriptionSnapshot",
    "apply_loyalty",
    "close_revoked_code",
    "finish_discount",
    "read_subscription",
    "revoke_discount",
    "revoke_duplicate_loyalty_codes",
    "revoke_live_discounts",
    "send_loyalty_email",
    "sync_subscription",
    "take_read_ticket",
]
