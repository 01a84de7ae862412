"""The Stripe client: promotion codes through the official SDK (`stripe`), pointed at
settings.STRIPE_API_BASE. HTTP only: it knows nothing of our models.

Stripe facts it relies on (docs/ARCHITECTURE.md, "What the code relies on at the providers"):
- `Idempotency-Key` header, 1 to 255 characters (checked here; loyalty.keys builds them), kept at
  least 24 hours. The first response (success or failure, 500s included) is replayed for the same
  key; the same key with other parameters is an `idempotency_error`; a concurrent request with a
  key in flight gets 409 `idempotency_key_in_use` (nothing was saved: retry later).
- Promotion codes: create (coupon, customer, code, max_redemptions), list by code / coupon /
  customer / active, deactivate with `active=false`.

Errors are split by what the caller may do next:
- StripeUnavailable (retryable): the outcome is unknown or temporary (timeout, dropped connection,
  5xx, 409 `idempotency_key_in_use`, 429). Retry with the SAME idempotency key.
- StripeRefused (not retryable): Stripe refused the request (4xx: a missing coupon, bad parameters,
  a key reused with other parameters). Retrying unchanged will not help until the cause is fixed.

The SDK retries network errors, 409 and 5xx itself (MAX_NETWORK_RETRIES times, with backoff), and it
sends the same Idempotency-Key header on every retry because the headers are built once per call.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import stripe
from django.conf import settings

MAX_NETWORK_RETRIES = 2
IDEMPOTENCY_KEY_MAX_LENGTH = 255
PAGE_SIZE = 100


class StripeError(Exception):
    """Ours, not the SDK's stripe.StripeError (which _translate turns into one of these)."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def describe(self) -> str:
        status = f"HTTP {self.status}" if self.status else "no response"
        return f"{type(self).__name__} ({status}{', ' + self.code if self.code else ''}): {self.message}"


class StripeUnavailable(StripeError):
    """Timeout, connection error, 5xx, 409 or 429: the request may or may not have happened."""

    retryable = True


class StripeRefused(StripeError):
    """A 4xx refusal: nothing was created; fix the cause, then retry with the same key."""

    retryable = False


@dataclass(frozen=True)
class StripePromotionCode:
    id: str
    code: str
    customer: str | None
    coupon: str | None
    active: bool
    created: int
    metadata: Mapping[str, str] = field(default_factory=dict)


class StripeClient:
    def __init__(self, *, api_key: str, api_base: str, timeout: float) -> None:
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base},
            max_network_retries=MAX_NETWORK_RETRIES,
            http_client=stripe.RequestsClient(timeout=timeout),
        )

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
        with _translated_errors():
            created = self._client.v1.promotion_codes.create(
                params, options={"idempotency_key": _checked_key(idempotency_key)}
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
        with _translated_errors():
            page = self._client.v1.promotion_codes.list(params)
            for item in page.auto_paging_iter():
                yield _promotion_code(item)

    def deactivate_promotion_code(self, *, promotion_code_id: str, idempotency_key: str) -> StripePromotionCode:
        with _translated_errors():
            updated = self._client.v1.promotion_codes.update(
                promotion_code_id, {"active": False}, options={"idempotency_key": _checked_key(idempotency_key)}
            )
        return _promotion_code(updated)


def stripe_client() -> StripeClient:
    """The client for the account in settings (STRIPE_SECRET_KEY, STRIPE_API_BASE, STRIPE_TIMEOUT_SECONDS)."""
    return _cached_client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, settings.STRIPE_TIMEOUT_SECONDS)


@lru_cache(maxsize=8)
def _cached_client(api_key: str, api_base: str, timeout: float) -> StripeClient:
    # One SDK client per configuration: its HTTP client keeps a connection pool per thread.
    return StripeClient(api_key=api_key, api_base=api_base, timeout=timeout)


def _checked_key(key: str) -> str:
    if not key or len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise ValueError(f"A Stripe idempotency key needs 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters: {key!r}")
    return key


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except stripe.StripeError as exc:
        raise _translate(exc) from exc


def _translate(exc: stripe.StripeError) -> StripeError:
    status = exc.http_status
    code = exc.code or (exc.error.code if exc.error is not None and exc.error.code else "") or ""
    message = exc.user_message or str(exc) or type(exc).__name__
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return StripeUnavailable(message, status=status, code=code or "connection_error")
    if isinstance(exc, stripe.IdempotencyError):
        return StripeRefused(message, status=status, code=code or "idempotency_error")
    if status is None or status >= 500 or status == 409:
        return StripeUnavailable(message, status=status, code=code)
    return StripeRefused(message, status=status, code=code)


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
