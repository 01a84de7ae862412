"""The drain's claim lease: one push's worst case, derived from the configured timeouts.

A Square push past Square's 24 h key window first reads SearchOrders page by page, at most
POS_SYNC_SEARCH_MAX_PAGES pages, then makes two calls (CreateOrder, CreatePayment). Each call is one
HTTP request (the SDK's own retries are off, pos_sync.clients.square), and the SDK hands httpx one
float, SQUARE_TIMEOUT_SECONDS, that bounds each of its phases: waiting for a pooled connection,
connecting, writing, reading. The lease covers that whole chain; the push also renews it after every
page and checks it still holds it right before creating anything (the drain's heartbeat), for what
the arithmetic cannot see (core.leases).

POS_SYNC_CLAIM_LEASE unset (the default): the lease is this worst case. Set (from
POS_SYNC_CLAIM_LEASE_MINUTES), it may be longer but never shorter: every process refuses to start
(PosSyncConfig.ready) rather than let a second worker take over a push that is still running.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.leases import CallChain, check_lease, httpx_attempt_timeout, worst_case

SQUARE_HTTP_PHASES = 4  # pool, connect, write, read
SQUARE_CREATE_CALLS = 2  # CreateOrder, CreatePayment
SQUARE_CLIENT_RETRIES = 0  # NO_SDK_RETRIES: a call is exactly one request


def push_call_chain() -> CallChain:
    """The longest a Square push can take: every search page it may read, then the two creates."""
    return CallChain(
        what="a Square push (POS_SYNC_SEARCH_MAX_PAGES search pages, CreateOrder, CreatePayment)",
        calls=settings.POS_SYNC_SEARCH_MAX_PAGES + SQUARE_CREATE_CALLS,
        attempt_timeout=httpx_attempt_timeout(settings.SQUARE_TIMEOUT_SECONDS, phases=SQUARE_HTTP_PHASES),
        attempts=1 + SQUARE_CLIENT_RETRIES,
    )


def claim_lease() -> timedelta:
    """The configured lease, or (unset) the derived one: read each time, so a changed setting applies."""
    configured: timedelta | None = settings.POS_SYNC_CLAIM_LEASE
    return configured if configured is not None else worst_case(push_call_chain())


def check_claim_lease() -> None:
    """Refuse a page bound below one and a configured lease shorter than one push's worst case."""
    if settings.POS_SYNC_SEARCH_MAX_PAGES < 1:
        raise ImproperlyConfigured(
            f"POS_SYNC_SEARCH_MAX_PAGES must be at least 1, got {settings.POS_SYNC_SEARCH_MAX_PAGES}: "
            "a push past Square's key window must read before it creates."
        )
    if settings.POS_SYNC_CLAIM_LEASE is not None:
        check_lease(
            setting="POS_SYNC_CLAIM_LEASE (POS_SYNC_CLAIM_LEASE_MINUTES)",
            configured=settings.POS_SYNC_CLAIM_LEASE,
            chain=push_call_chain(),
        )
