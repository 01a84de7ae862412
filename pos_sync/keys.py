"""Every key this app hands to a provider or to the claim table, one function per key.

Derived only from our own stable ids (and, for refunds, Square's id of the payment refunded):
never from the clock or a random value, so every retry of the same step sends the same key.
"""

import uuid
from datetime import date

SQUARE_ORDER_KEY_MAX = 192  # CreateOrder
SQUARE_PAYMENT_KEY_MAX = 45  # CreatePayment
SQUARE_REFUND_KEY_MAX = 45  # RefundPayment
SQUARE_REFERENCE_ID_MAX = 40  # Order.reference_id and Payment.reference_id
# Our namespace in Square's free-text reference_id. It tells our orders from a restaurant's other
# integrations at a glance, but anyone can write it: ownership also needs our metadata
# (pos_sync.providers.ownership), which only our application can write or read.
SQUARE_REFERENCE_PREFIX = "bo-"
# A fixed namespace: uuid5 over a stable name is itself stable across processes and releases.
POS_SYNC_NAMESPACE = uuid.UUID("6f1c5d0e-3c52-5b8e-9a53-7d0f3e8b2a41")


def sync_claim_key(*, order_id: int, provider: str, day: date) -> str:
    """pos-sync:{order}:{provider}:{date}: at most one push of an order to a provider per day."""
    return f"pos-sync:{order_id}:{provider}:{day.isoformat()}"


def square_order_key(order_id: int) -> str:
    """CreateOrder's key for our order: e.g. posSync:42:square:order."""
    return _checked(f"posSync:{order_id}:square:order", SQUARE_ORDER_KEY_MAX)


def square_payment_key(order_id: int) -> str:
    """CreatePayment's key for our order's payment: at most 42 characters for any bigint id."""
    return _checked(f"posSync:{order_id}:square:payment", SQUARE_PAYMENT_KEY_MAX)


def square_reference_id(order_id: int) -> str:
    """The reference_id of our order (and of its payment) at Square: bo-<order id>, e.g. bo-42.
    Orders pushed before the ownership mark carry the bare order id ("42")."""
    return _checked(f"{SQUARE_REFERENCE_PREFIX}{order_id}", SQUARE_REFERENCE_ID_MAX)


def square_refund_key(payment_id: str) -> str:
    """RefundPayment's key for refunding one duplicate payment: a second reconcile run sends the
    same key, so Square replays the first refund instead of making another. Square's payment ids
    vary in length, so the key is a uuid5 (36 characters) over them."""
    return _checked(str(uuid.uuid5(POS_SYNC_NAMESPACE, f"posSync:refund:square:{payment_id}")), SQUARE_REFUND_KEY_MAX)


def _checked(key: str, maximum: int) -> str:
    if not 1 <= len(key) <= maximum:
        raise ValueError(f"Idempotency key {key!r} is {len(key)} characters; the provider allows 1 to {maximum}.")
    return key
