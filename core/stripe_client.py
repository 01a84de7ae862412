"""The one construction of the official Stripe SDK (`stripe`) and our translation of its errors.

Every app that calls Stripe (loyalty's promotion codes and subscription reads, affiliates'
invoice payments) takes its SDK client from `sdk_client()` and wraps its calls in
`translated_errors()`; each app's `clients/stripe.py` keeps only its own calls. HTTP only:
nothing here knows our models.

Errors are split by what the caller may do next:
- StripeUnavailable (retryable): the outcome is unknown or temporary (timeout, dropped
  connection, 5xx, 429, and 409 such as `idempotency_key_in_use`). Retry with the SAME key.
- StripeRefused (not retryable): Stripe refused the request (4xx: a missing object, bad
  parameters, a key reused with other parameters). Retrying unchanged will not help.

Stripe facts relied on (docs/ARCHITECTURE.md, "What the code relies on at the providers"):
- A request that "conflicts with another request that's executing concurrently" with the same
  Idempotency-Key is not executed and nothing is saved for the key: "You can retry these
  requests" (https://docs.stripe.com/api/idempotent_requests). Stripe answers it 409 with the
  code `idempotency_key_in_use` (https://docs.stripe.com/error-codes), so it is StripeUnavailable.
- The SDK (stripe-python, `_should_retry`) itself retries connection errors, 409 and 5xx up to
  `max_network_retries` times with backoff, and resends the same Idempotency-Key header on every
  retry (the headers are built once per call).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import stripe
from django.conf import settings

from core.provider_errors import ProviderCallError

MAX_NETWORK_RETRIES = 2
IDEMPOTENCY_KEY_MAX_LENGTH = 255
IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use"
RESOURCE_MISSING = "resource_missing"


class StripeError(ProviderCallError):
    """Ours, not the SDK's stripe.StripeError (which translated_errors turns into one of these)."""


class StripeUnavailable(StripeError):
    """Timeout, connection error, 5xx, 409 or 429: the request may or may not have happened."""

    retryable = True


class StripeRefused(StripeError):
    """A 4xx refusal: nothing was created; fix the cause, then retry with the same key."""

    retryable = False

    @property
    def missing(self) -> bool:
        """Stripe has no such object (404 resource_missing)."""
        return self.status == 404 or self.code == RESOURCE_MISSING


def sdk_client() -> stripe.StripeClient:
    """The SDK client for the account in settings (STRIPE_SECRET_KEY, STRIPE_API_BASE,
    STRIPE_TIMEOUT_SECONDS); STRIPE_API_BASE points it at the stand-in in the demo and the tests."""
    return build_sdk_client(
        api_key=settings.STRIPE_SECRET_KEY,
        api_base=settings.STRIPE_API_BASE,
        timeout=settings.STRIPE_TIMEOUT_SECONDS,
    )


@lru_cache(maxsize=8)
def build_sdk_client(*, api_key: str, api_base: str, timeout: float) -> stripe.StripeClient:
    # One SDK client per configuration: its HTTP client keeps a connection pool per thread.
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base},
        max_network_retries=MAX_NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


def checked_key(key: str) -> str:
    """An Idempotency-Key of 1 to 255 characters, refused here before anything is sent."""
    if not key or len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise ValueError(f"A Stripe idempotency key needs 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters: {key!r}")
    return key


@contextmanager
def translated_errors() -> Iterator[None]:
    try:
        yield
    except stripe.StripeError as exc:
        raise translate(exc) from exc


def translate(exc: stripe.StripeError) -> StripeError:
    status = exc.http_status
    code = exc.code or (exc.error.code if exc.error is not None and exc.error.code else "") or ""
    message = exc.user_message or str(exc) or type(exc).__name__
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return StripeUnavailable(message, status=status, code=code or "connection_error")
    if code == IDEMPOTENCY_KEY_IN_USE or status == 409:
        # Checked before IdempotencyError: whatever error type Stripe gives it, a key still in
        # flight means "nothing was saved for this key yet, retry later", never a refusal.
        return StripeUnavailable(message, status=status, code=code)
    if isinstance(exc, stripe.IdempotencyError):
        return StripeRefused(message, status=status, code=code or "idempotency_error")
    if status is None or status >= 500:
        return StripeUnavailable(message, status=status, code=code)
    return StripeRefused(message, status=status, code=code)
