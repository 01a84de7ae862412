"""The Square client: the official SDK (`squareup`), pointed at SQUARE_BASE_URL. Knows nothing of
our models: it takes and returns plain values (amounts in minor units).

Square facts it relies on (docs/ARCHITECTURE.md, "What the code relies on at the providers"):
- `idempotency_key` is a field of the request body: CreateOrder allows up to 192 characters,
  CreatePayment and RefundPayment 1 to 45 (pos_sync.keys builds and checks them). The same key with
  the same request returns the original result; with a changed request, an error.
- The key retention window is not published: past 24 hours the caller reads first (SearchOrders,
  then pos_sync.providers.ownership decides which order is ours) instead of trusting a resent key.
- An order's `metadata` entries are private to the application that wrote them: Square returns
  ours to us and no other application's (https://developer.squareup.com/docs/orders-api/metadata).
- One access token per restaurant (PosConnection), so the client is built per token.

Retries are ours, not the SDK's. The SDK retries 408/409/429/5xx twice by default, with sleeps,
inside one call; we pass max_retries=0 on every request so that a call is exactly one HTTP request.
The drain owns the retry policy: it records the failure, backs off exponentially with jitter
across beat ticks, and resends with the same idempotency keys. A timeout is never retried inline.

Errors are split by what the caller may do next:
- SquareUnavailable (retryable): connection lost, 408/409/429 or 5xx: retry later with the same key.
  Its subclass SquareTimeout: no answer in time; Square may have done the work: resend the same key.
- SquareRefused (not retryable): any other 4xx: Square understood and refused; retrying will not help.
"""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from django.conf import settings
from square import Square
from square.core.api_error import ApiError
from square.core.request_options import RequestOptions

from core.provider_errors import ProviderCallError
from pos_sync.clients import sdk_type_hints

sdk_type_hints.install()  # a third of a push's CPU otherwise; see the module

NO_SDK_RETRIES: RequestOptions = {"max_retries": 0}
RETRYABLE_STATUSES = {408, 409, 429}
SEARCH_PAGE_SIZE = 500


class SquareError(ProviderCallError):
    pass


class SquareUnavailable(SquareError):
    """Connection lost, 408/409/429 or 5xx."""

    retryable = True


class SquareTimeout(SquareUnavailable):
    """No answer within SQUARE_TIMEOUT_SECONDS: the outcome is unknown."""


class SquareRefused(SquareError):
    """A 4xx other than 408/409/429: the request itself is wrong (or the token is)."""

    retryable = False


class SquareSearchTruncated(SquareError):
    """A search stopped at the caller's page limit while Square had more: what it did not read is
    unknown. Not retryable: the same search only grows."""

    retryable = False


@dataclass(frozen=True)
class SquareTender:
    payment_id: str
    amount: int
    currency: str


@dataclass(frozen=True)
class SquareOrder:
    id: str
    location_id: str
    reference_id: str
    created_at: str
    state: str
    total: int
    currency: str
    tenders: tuple[SquareTender, ...] = ()
    refunded_payment_ids: frozenset[str] = field(default_factory=frozenset)
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SquareLineItem:
    name: str
    quantity: int
    unit_amount: int  # minor units


_shared_lock = threading.Lock()
_clients: dict[int, httpx.Client] = {}


def _http_client() -> httpx.Client:
    # One pooled httpx.Client per process (thread-safe): creating one per call costs ~20 ms (its
    # SSL context). Keyed by pid so a forked Celery worker never shares a parent's sockets.
    pid = os.getpid()
    with _shared_lock:
        if pid not in _clients:
            _clients[pid] = httpx.Client(limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
        return _clients[pid]


class SquareClient:
    def __init__(self, *, access_token: str, base_url: str, timeout: float) -> None:
        self._sdk = Square(token=access_token, base_url=base_url, timeout=timeout, httpx_client=_http_client())

    def create_order(
        self,
        *,
        idempotency_key: str,
        location_id: str,
        reference_id: str,
        line_items: list[SquareLineItem],
        currency: str,
        ticket_name: str = "",
        metadata: dict[str, str] | None = None,
    ) -> SquareOrder:
        order: dict[str, Any] = {
            "location_id": location_id,
            "reference_id": reference_id,
            "source": {"name": "Back office POS sync"},
            "line_items": [
                {
                    "name": item.name,
                    "quantity": str(item.quantity),
                    "base_price_money": {"amount": item.unit_amount, "currency": currency},
                }
                for item in line_items
            ],
        }
        if ticket_name:
            order["ticket_name"] = ticket_name
        if metadata:
            order["metadata"] = metadata
        with _translated("CreateOrder"):
            response = self._sdk.orders.create(
                order=order, idempotency_key=idempotency_key, request_options=NO_SDK_RETRIES
            )
        return _order(response.order)

    def create_external_payment(
        self,
        *,
        idempotency_key: str,
        order_id: str,
        location_id: str,
        amount: int,
        currency: str,
        reference_id: str,
        source: str,
    ) -> str:
        """An EXTERNAL payment (taken at the restaurant) that pays `order_id` in full."""
        with _translated("CreatePayment"):
            response = self._sdk.payments.create(
                source_id="EXTERNAL",
                idempotency_key=idempotency_key,
                amount_money={"amount": amount, "currency": currency},
                order_id=order_id,
                location_id=location_id,
                reference_id=reference_id,
                external_details={"type": "OTHER", "source": source},
                request_options=NO_SDK_RETRIES,
            )
        return _required_id(response.payment, "CreatePayment")

    def search_orders(
        self,
        *,
        location_id: str,
        created_since: datetime,
        page_size: int = SEARCH_PAGE_SIZE,
        max_pages: int | None = None,
    ) -> Iterator[list[SquareOrder]]:
        """Every order created at the location since `created_since`, oldest first, page by page.

        max_pages: a caller that must finish in bounded time reads at most this many; asked for the
        next page past them while Square has more, this raises SquareSearchTruncated (no request).
        """
        query = {
            "filter": {"date_time_filter": {"created_at": {"start_at": _rfc3339(created_since)}}},
            "sort": {"sort_field": "CREATED_AT", "sort_order": "ASC"},
        }
        cursor: str | None = None
        pages = 0
        while True:
            with _translated("SearchOrders"):
                kwargs: dict[str, Any] = {"cursor": cursor} if cursor else {}
                response = self._sdk.orders.search(
                    location_ids=[location_id], query=query, limit=page_size, request_options=NO_SDK_RETRIES, **kwargs
                )
            yield [_order(o) for o in response.orders or []]
            pages += 1
            cursor = response.cursor
            if not cursor:
                return
            if max_pages is not None and pages >= max_pages:
                raise SquareSearchTruncated(
                    f"SearchOrders: Square has more than {max_pages} pages of {page_size} orders since "
                    f"{_rfc3339(created_since)}; stopped before reading further."
                )

    def refund_payment(self, *, idempotency_key: str, payment_id: str, amount: int, currency: str, reason: str) -> str:
        with _translated("RefundPayment"):
            response = self._sdk.refunds.refund_payment(
                idempotency_key=idempotency_key,
                payment_id=payment_id,
                amount_money={"amount": amount, "currency": currency},
                reason=reason,
                request_options=NO_SDK_RETRIES,
            )
        return _required_id(response.refund, "RefundPayment")


def square_client(*, access_token: str) -> SquareClient:
    """The client for one restaurant's token, at SQUARE_BASE_URL with SQUARE_TIMEOUT_SECONDS."""
    return SquareClient(
        access_token=access_token, base_url=settings.SQUARE_BASE_URL, timeout=settings.SQUARE_TIMEOUT_SECONDS
    )


@contextmanager
def _translated(operation: str) -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException as exc:
        raise SquareTimeout(f"{operation}: no answer from Square in time ({type(exc).__name__}).") from exc
    except httpx.TransportError as exc:
        raise SquareUnavailable(f"{operation}: connection to Square failed ({type(exc).__name__}).") from exc
    except ApiError as exc:
        raise _api_error(operation, exc) from exc


def _api_error(operation: str, exc: ApiError) -> SquareError:
    status = exc.status_code or 0
    first = exc.errors[0] if exc.errors else None
    code = (first.code if first else "") or ""
    detail = (first.detail if first else "") or ""
    where = f" (field {first.field})" if first is not None and first.field else ""
    message = f"{operation}: Square answered {status} {code}: {detail}{where}".rstrip(": ")
    if status >= 500 or status in RETRYABLE_STATUSES:
        return SquareUnavailable(message, status=status, code=code)
    return SquareRefused(message, status=status, code=code)


def _order(order: Any) -> SquareOrder:
    if order is None or not order.id:
        raise SquareUnavailable("Square answered without an order.")
    total = order.total_money
    tenders = tuple(
        SquareTender(payment_id=t.payment_id or t.id or "", amount=_amount(t.amount_money), currency=_currency(t))
        for t in order.tenders or []
    )
    return SquareOrder(
        id=order.id,
        location_id=order.location_id or "",
        reference_id=order.reference_id or "",
        created_at=order.created_at or "",
        state=str(order.state or ""),
        total=_amount(total),
        currency=str(total.currency) if total and total.currency else "",
        tenders=tenders,
        refunded_payment_ids=frozenset(r.tender_id for r in order.refunds or [] if r.tender_id),
        metadata={str(k): str(v) for k, v in (order.metadata or {}).items() if v is not None},
    )


def _amount(money: Any) -> int:
    return int(money.amount or 0) if money is not None else 0


def _currency(tender: Any) -> str:
    return str(tender.amount_money.currency) if tender.amount_money and tender.amount_money.currency else ""


def _required_id(obj: Any, operation: str) -> str:
    if obj is None or not obj.id:
        raise SquareUnavailable(f"{operation}: Square answered without an id.")
    return str(obj.id)


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
