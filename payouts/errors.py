"""The payouts app's error codes, and the payout flavour of the generic Conflict."""

from django.db import models

from audit.errors import Conflict


class PayoutErrorCode(models.TextChoices):
    INSUFFICIENT_BALANCE = "insufficient_balance"
    KYC_NOT_VERIFIED = "kyc_not_verified"
    NOT_AN_AFFILIATE = "not_an_affiliate"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_CURRENCY = "invalid_currency"
    NO_WISE_TRANSFER = "no_wise_transfer"
    WISE_REFUSED = "wise_refused"
    WISE_UNAVAILABLE = "wise_unavailable"
    NOT_PROCESSING = "not_processing"
    WISE_TRANSFER_NOT_SETTLED = "wise_transfer_not_settled"
    INVALID_SIGNATURE = "invalid_signature"
    INVALID_PAYLOAD = "invalid_payload"


class PayoutConflict(Conflict):
    """A lost review race, in the reviewer's words: who reviewed it (or moved it) and when.

    Built from the generic Conflict that audit.transitions raises, so the API answers
    {"error": "conflict", "current_status", "current_reviewer", "reviewed_at"}.
    """

    @classmethod
    def from_conflict(cls, exc: Conflict) -> "PayoutConflict":
        if isinstance(exc, cls):
            return exc
        details = dict(exc.details)
        return cls(
            exc.message,
            code=exc.code,
            current_status=details.get("current_status"),
            current_reviewer=details.get("current_actor"),
            reviewed_at=details.get("changed_at"),
            expected_status=details.get("expected_status"),
        )
