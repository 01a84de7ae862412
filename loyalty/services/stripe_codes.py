"""What the loyalty services ask of Stripe, with the keys that make each request safe to repeat.

Never called inside a database transaction: a row lock must not wait on the network.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from audit.beacons import in_open_transaction
from loyalty.clients.stripe import StripePromotionCode, StripeRefused, stripe_client
from loyalty.errors import LoyaltyErrorCode
from loyalty.keys import discount_metadata, stripe_deactivation_key, stripe_promotion_code_key
from loyalty.models import LoyaltyDiscount

# Stripe keeps idempotency keys "at least 24 hours"; an hour of margin before relying on a lookup.
IDEMPOTENCY_WINDOW = timedelta(hours=23)
DUPLICATE_CODE = "duplicate_value"


def obtain_promotion_code(discount: LoyaltyDiscount) -> StripePromotionCode:
    """The discount's code at Stripe: created with the row's stable key (a retry or a later tick
    gets Stripe's replay of the first result), or, once that key may have expired, found by the
    deterministic code string. Stripe refuses a second active code with the same string, so even
    a create after the window cannot make a duplicate: it is answered by the lookup."""
    _outside_transaction()
    window_passed = discount.first_attempt_at is not None and (
        timezone.now() - discount.first_attempt_at >= IDEMPOTENCY_WINDOW
    )
    if window_passed and (found := find_own_code(discount, active_only=False)) is not None:
        if not found.active:
            # Ours, but deactivated at Stripe by someone: making another would be a second code.
            raise StripeRefused(
                f"Promotion code {found.id} was made for this discount but is inactive at Stripe.",
                code=LoyaltyErrorCode.OWN_CODE_INACTIVE,
            )
        return found
    try:
        return stripe_client().create_promotion_code(
            coupon=settings.LOYALTY_COUPON_ID,
            customer=discount.subscription.stripe_customer_id,
            code=discount.code,
            metadata=discount_metadata(discount),
            idempotency_key=stripe_promotion_code_key(discount),
        )
    except StripeRefused as exc:
        if exc.code == DUPLICATE_CODE and (found := find_own_code(discount)) is not None:
            return found
        raise


def find_own_code(discount: LoyaltyDiscount, *, active_only: bool = True) -> StripePromotionCode | None:
    """GET /v1/promotion_codes?code=...: the code this row created (its metadata names the row).

    Earlier codes with the same string (a revoked year of a previous subscription) name other rows.
    """
    _outside_transaction()
    for candidate in stripe_client().list_promotion_codes(code=discount.code):
        if candidate.metadata.get("loyalty_discount_id") == str(discount.pk) and (candidate.active or not active_only):
            return candidate
    return None


def deactivate_promotion_code(promotion_code_id: str) -> None:
    """POST /v1/promotion_codes/{id} active=false with a key derived from the code's id: the
    revocation, its sweeper and the backfill may all send it; Stripe applies it once.
    A code Stripe does not know (404) is as good as inactive."""
    _outside_transaction()
    try:
        stripe_client().deactivate_promotion_code(
            promotion_code_id=promotion_code_id, idempotency_key=stripe_deactivation_key(promotion_code_id)
        )
    except StripeRefused as exc:
        if exc.status != 404:
            raise


def _outside_transaction() -> None:
    if in_open_transaction():
        raise RuntimeError("Stripe is never called inside a database transaction (see docs/ARCHITECTURE.md).")
