"""The loyalty domain's Stripe calls: promotion codes and subscription reads, through the SDK
client that core.stripe_client builds (pointed at settings.STRIPE_API_BASE) and with its error
translation. HTTP only: it knows nothing of our models.

Stripe facts it relies on (docs/ARCHITECTURE.md, "What the code relies on at the providers"):
- `Idempotency-Key` header, 1 to 255 characters (checked by core.stripe_client.checked_key;
  loyalty.keys builds them), kept at least 24 hours. The first response (success or failure, 500s
  included) is replayed for the same key; the same key with other parameters is an
  `idempotency_error` (StripeRefused); a concurrent request with a key in flight gets 409
  `idempotency_key_in_use` (nothing was saved: StripeUnavailable, retry later with the same key).
- Promotion codes: create (coupon, customer, code, max_redemptions), list by code / coupon /
  customer / active, deactivate with `active=false`.
- Subscriptions: `GET /v1/subscriptions/{id}` returns the subscription as it is now; a canceled
  one is still returned (status `canceled`); an unknown id is 404 `resource_missing`.

The SDK retries network errors, 409 and 5xx itself (core.stripe_client.MAX_NETWORK_RETRIES times,
with backoff), and it sends the same Idempotency-Key header on every retry.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from core.stripe_client import (
    StripeError,
    StripeRefused,
    StripeUnavailable,
    build_sdk_client,
    checked_key,
    translated_errors,
)

__all__ = [
    "StripeClient",
    "StripeError",
    "StripePromotionCode",
    "StripeRefused",
    "StripeSubscription",
    "StripeUnavailable",
    "stripe_client",
]

PAGE_SIZE = 100


@dataclass(frozen=True)
class StripePromotionCode:
    id: str
    code: str
    customer: str | None
    coupon: str | None
    active: bool
    created: int
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StripeSubscription:
    """A subscription as Stripe reports it now (GET /v1/subscriptions/{id})."""

    id: str
    customer: str
    status: str
    start_date: int
    plan: str  # metadata.plan if our checkout set it, else the first item's price lookup key (or id)
    metadata: Mapping[str, str] = field(default_factory=dict)


class StripeClient:
    def __init__(self, *, api_key: str, api_base: str, timeout: float) -> None:
        self._client = build_sdk_client(api_key=api_key, api_base=api_base, timeout=timeout)

    def create_promotion_code(
        self, *, coupon: str, customer: str, code: str, metadata: Mapping[str, str], idempotency_key: str
    ) -> StripePromotionCode:
        """A single-use code for one customer. Same key -> Stripe replays the first result."""
        params: Any = {
            "promotion": {"type": "coupon", "coupon": coupon},
            "customer": customer,
            "code": code,
            "max_redemptions": 1,
            "metadata": dict(metadata),
        }
        with translated_errors():
            created = self._client.v1.promotion_codes.create(
                params, options={"idempotency_key": checked_key(idempotency_key)}
            )
        return _promotion_code(created)

    def list_promotion_codes(
        self,
        *,
        code: str | None = None,
        coupon: str | None = None,
        customer: str | None = None,
        active: bool | None = None,
    ) -> Iterator[StripePromotionCode]:
        """Every matching code, newest first, fetched page by page (starting_after)."""
        params: Any = {"limit": PAGE_SIZE}
        for name, value in (("code", code), ("coupon", coupon), ("customer", customer), ("active", active)):
            if value is not None:
                params[name] = value
        with translated_errors():
            page = self._client.v1.promotion_codes.list(params)
            for item in page.auto_paging_iter():
                yield _promotion_code(item)

    def deactivate_promotion_code(self, *, promotion_code_id: str, idempotency_key: str) -> StripePromotionCode:
        with translated_errors():
            updated = self._client.v1.promotion_codes.update(
                promotion_code_id, {"active": False}, options={"idempotency_key": checked_key(idempotency_key)}
            )
        return _promotion_code(updated)

    def retrieve_subscription(self, subscription_id: str) -> StripeSubscription | None:
        """The subscription as it is at Stripe now; None if Stripe has no such subscription."""
        try:
            with translated_errors():
                found = self._client.v1.subscriptions.retrieve(subscription_id)
        except StripeRefused as exc:
            if exc.missing:
                return None
            raise
        return _subscription(found)


def stripe_client() -> StripeClient:
    """The client for the account in settings (STRIPE_SECRET_KEY, STRIPE_API_BASE, STRIPE_TIMEOUT_SECONDS)."""
    return StripeClient(
        api_key=settings.STRIPE_SECRET_KEY,
        api_base=settings.STRIPE_API_BASE,
        timeout=settings.STRIPE_TIMEOUT_SECONDS,
    )


def _promotion_code(resource: Any) -> StripePromotionCode:
    obj = resource.to_dict() if hasattr(resource, "to_dict") else dict(resource)
    promotion = obj.get("promotion") or {}
    coupon = promotion.get("coupon") if promotion else None
    if isinstance(coupon, Mapping):
        coupon = coupon.get("id")
    customer = obj.get("customer")
    if isinstance(customer, Mapping):
        customer = customer.get("id")
    return StripePromotionCode(
        id=obj["id"],
        code=obj["code"],
        customer=customer,
        coupon=coupon,
        active=bool(obj["active"]),
        created=int(obj["created"]),
        metadata={str(k): str(v) for k, v in (obj.get("metadata") or {}).items()},
    )


def _subscription(resource: Any) -> StripeSubscription:
    obj = resource.to_dict() if hasattr(resource, "to_dict") else dict(resource)
    customer = obj.get("customer")
    if isinstance(customer, Mapping):
        customer = customer.get("id")
    metadata = {str(k): str(v) for k, v in (obj.get("metadata") or {}).items()}
    return StripeSubscription(
        id=obj["id"],
        customer=str(customer),
        status=str(obj["status"]),
        start_date=int(obj.get("start_date") or obj.get("created") or 0),
        plan=_plan(obj, metadata),
        metadata=metadata,
    )


def _plan(obj: Mapping[str, Any], metadata: Mapping[str, str]) -> str:
    if metadata.get("plan"):
        return metadata["plan"]
    items = (obj.get("items") or {}).get("data") or []
    price = (items[0].get("price") or {}) if items else {}
    return str(price.get("lookup_key") or price.get("id") or "")
