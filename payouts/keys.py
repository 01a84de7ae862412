"""Idempotency keys, one function per key, derived only from our own stable ids (never the clock)."""

import uuid

# Fixed forever: changing it would give every in-flight payout a new Wise customerTransactionId.
WISE_TRANSACTION_NAMESPACE = uuid.UUID("6f1f3c1e-5d7a-4f51-9a0b-0b6c1f0a4700")


def wise_transaction_id(*, payout_id: int, attempt: int) -> str:
    """Wise's customerTransactionId for one attempt of one payout: every retry of the attempt
    resends it (Wise then returns the transfer it already made); a new attempt gets a new one."""
    return str(uuid.uuid5(WISE_TRANSACTION_NAMESPACE, f"payout:{payout_id}:attempt:{attempt}"))


def dispatch_claim_key(*, payout_id: int, attempt: int) -> str:
    """The core.claims key that lets one worker at a time run the Wise dispatch of one attempt."""
    return f"payouts:wise-dispatch:{payout_id}:attempt:{attempt}"
