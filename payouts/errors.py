"""The payouts app's error codes, and the payout flavour of the generic Conflict."""

from collections.abc import Mapping
from typing import Any

from django.db import models

from core.errors import Conflict


class PayoutErrorCode(models.TextChoices):
    INSUFFICIENT_BALANCE = "insufficient_balance"
    KYC_NOT_VERIFIED = "kyc_not_verified"
    INVALID_AMOUNT = "invalid_amount"
    AMOUNT_TOO_LARGE = "amount_too_large"
    INVALID_CURRENCY = "invalid_currency"
    NO_WISE_TRANSFER = "no_wise_transfer"
    WISE_REFUSED = "wise_refused"
    WISE_UNAVAILABLE = "wise_unavailable"
    NOT_PROCESSING = "not_processing"
    WISE_TRANSFER_NOT_SETTLED = "wise_transfer_not_settled"
    # payouts.authority and the dual approval
    SUPER_ADMINS_ONLY = "super_admins_only"
    OWN_PAYOUT = "own_payout"
    ALREADY_APPROVED = "already_approved"
    INVALID_REASON = "invalid_reason"
    REASON_REQUIRED = "reason_required"


class PayoutConflict(Conflict):
    """A lost review race, in the reviewer's words: who reviewed it (or moved it) and when.

    Built from the generic Conflict that audit.transitions raises, so the API answers
    {"error": "conflict", "current_status", "current_reviewer", "reviewed_at"}.
    """

    @classmethod
    def from_conflict(cls, exc: Conflict, *, decision: Mapping[str, Any] | None = None) -> "PayoutConflict":
        """decision: the last decision a person made on the payout (actor_label, target, at). Jobs
        move a payout on right after a reviewer decided (the Wise dispatch follows every approval
        within a second), and a reviewer who lost the race must be told who decided, not which
        job ran last."""
        if isinstance(exc, cls):
            return exc
        details = dict(exc.details)
        reviewer, reviewed_at = details.get("current_actor"), details.get("changed_at")
        if decision is not None:
            reviewer, reviewed_at = decision["actor_label"], decision["at"].isoformat()
        return cls(
            exc.message,
            code=exc.code,
            current_status=details.get("current_status"),
            current_reviewer=reviewer,
            reviewed_at=reviewed_at,
            decided_status=decision["target"] if decision is not None else details.get("current_status"),
            current_actor=details.get("current_actor"),
            expected_status=details.get("expected_status"),
        )
