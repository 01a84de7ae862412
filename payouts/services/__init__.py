"""Every write of the payouts app, split by concern; import from here."""

from payouts.services.dispatch import DispatchOutcome, dispatch_wise_transfer, redispatch_stuck_payouts
from payouts.services.requests import request_payout
from payouts.services.review import (
    approve_payout,
    cancel_payout,
    reject_payout,
    retry_payout,
    review_payout,
    set_payout_status,
)
from payouts.services.settlement import (
    SettleOutcome,
    cancel_at_wise,
    poll_processing_payouts,
    record_wise_state,
)

__all__ = [
    "DispatchOutcome",
    "SettleOutcome",
    "approve_payout",
    "cancel_at_wise",
    "cancel_payout",
    "dispatch_wise_transfer",
    "poll_processing_payouts",
    "record_wise_state",
    "redispatch_stuck_payouts",
    "reject_payout",
    "request_payout",
    "retry_payout",
    "review_payout",
    "set_payout_status",
]
