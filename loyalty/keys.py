"""Every idempotency key and deterministic identifier of the loyalty domain, in one place.

Each is derived ONLY from our stable ids (never the clock, never a random value), so every tick,
retry and redelivery that works on the same fact sends the same key. The seed incident's key was
built from floor(now / 30 days): it changed between two ticks and Stripe created a second code.
"""

from loyalty.models import LoyaltyDiscount

CODE_PREFIX = "LOYALTY"
EMAIL_CLAIM_PREFIX = "loyalty:email:"


def loyalty_code(*, user_id: int, anniversary: int) -> str:
    """The customer-facing code: one per user and anniversary, so it can be looked up at Stripe
    once the idempotency window has passed (and Stripe refuses a second active code with it)."""
    return f"{CODE_PREFIX}{user_id}Y{anniversary}"


def stripe_promotion_code_key(discount: LoyaltyDiscount) -> str:
    """Idempotency-Key of POST /v1/promotion_codes: user, subscription and anniversary."""
    return (
        f"loyalty:promotion-code:user-{discount.user_id}:{discount.subscription.stripe_subscription_id}"
        f":anniversary-{discount.anniversary}"
    )


def stripe_deactivation_key(promotion_code_id: str) -> str:
    """Idempotency-Key of POST /v1/promotion_codes/{id} active=false (revocation and backfill)."""
    return f"loyalty:deactivate:{promotion_code_id}"


def email_claim_key(discount_id: int) -> str:
    """The claim that lets exactly one worker send a discount's "Loyalty Bonus" email."""
    return f"{EMAIL_CLAIM_PREFIX}{discount_id}"


def discount_metadata(discount: LoyaltyDiscount) -> dict[str, str]:
    """Sent with the create (part of the idempotent request, so stable too) and used to recognise
    our own code when looking it up by its string."""
    return {
        "loyalty_discount_id": str(discount.pk),
        "user_id": str(discount.user_id),
        "subscription": discount.subscription.stripe_subscription_id,
        "anniversary": str(discount.anniversary),
    }
