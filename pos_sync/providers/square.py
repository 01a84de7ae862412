"""Square behind the PosProvider interface: CreateOrder + an EXTERNAL CreatePayment per order.

Provider idempotency: both calls carry keys derived only from our order id (pos_sync.keys), so a
retry after a timeout gets Square's first result back instead of a second order or payment.
Square does not publish how long it keeps keys: once IDEMPOTENCY_WINDOW may have passed since the
first attempt, the push first reads (SearchOrders) and only creates what it does not find. What it
may find is decided by pos_sync.providers.ownership, as reconcile decides it: only an order that is
provably ours (our mark, or its id in our books) at the connection's location, never a restaurant's
own order that merely shares a reference.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings

from pos_sync import selectors
from pos_sync.clients.square import (
    SquareClient,
    SquareError,
    SquareLineItem,
    SquareOrder,
    SquareSearchTruncated,
    SquareTimeout,
    square_client,
)
from pos_sync.errors import PosSyncErrorCode
from pos_sync.keys import square_order_key, square_payment_key, square_refund_key
from pos_sync.providers import ownership
from pos_sync.providers.base import (
    Credentials,
    LeaseLost,
    OrderToPush,
    ProviderError,
    PushResult,
    RemoteOrder,
    RemotePayment,
    renewing,
)

IDEMPOTENCY_WINDOW = timedelta(hours=24)
PAYMENT_SOURCE = "Restaurant POS (back office sync)"


class SquareProvider:
    name = "square"
    idempotency_window = IDEMPOTENCY_WINDOW

    def push(
        self,
        *,
        order: OrderToPush,
        credentials: Credentials,
        look_up_since: datetime | None,
        still_ours: Callable[[], bool],
    ) -> PushResult:
        client = self._client(credentials)
        ours = ownership.mark(order_id=order.order_id, connection_id=credentials.connection_id)
        with _as_provider_error():
            existing = self._find(client, order, credentials, look_up_since, still_ours) if look_up_since else None
            if existing is not None and existing.tenders:
                return PushResult(existing.id, existing.tenders[0].payment_id, found_existing=True)
            if not still_ours():  # right before creating anything: never alongside the worker that took over
                raise LeaseLost(f"Order {order.order_id}: the lease ran out before anything was created at Square.")
            remote = existing or client.create_order(
                idempotency_key=square_order_key(order.order_id),
                location_id=credentials.location_id,
                reference_id=ours.reference_id,
                line_items=[SquareLineItem(line.name, line.quantity, line.unit_amount) for line in order.lines],
                currency=order.currency,
                ticket_name=f"Table {order.table_id}",
                metadata=ours.metadata,
            )
            payment_id = client.create_external_payment(
                idempotency_key=square_payment_key(order.order_id),
                order_id=remote.id,
                location_id=credentials.location_id,
                amount=order.total_amount,
                currency=order.currency,
                reference_id=ours.reference_id,  # Square's payments have no metadata: the order carries the proof
                source=PAYMENT_SOURCE,
            )
        return PushResult(remote.id, payment_id, found_existing=existing is not None)

    def list_orders(self, *, credentials: Credentials, since: datetime) -> Iterator[list[RemoteOrder]]:
        client = self._client(credentials)
        with _as_provider_error():
            for page in client.search_orders(location_id=credentials.location_id, created_since=since):
                yield [_remote(o) for o in page]

    def refund_payment(self, *, credentials: Credentials, payment: RemotePayment, reason: str) -> str:
        client = self._client(credentials)
        with _as_provider_error():
            return client.refund_payment(
                idempotency_key=square_refund_key(payment.payment_id),
                payment_id=payment.payment_id,
                amount=payment.amount,
                currency=payment.currency,
                reason=reason,
            )

    def _client(self, credentials: Credentials) -> SquareClient:
        return square_client(access_token=credentials.access_token)

    def _find(
        self,
        client: SquareClient,
        order: OrderToPush,
        credentials: Credentials,
        since: datetime,
        still_ours: Callable[[], bool],
    ) -> SquareOrder | None:
        # SearchOrders cannot filter on reference_id or metadata: read the location's orders created
        # since the first attempt (oldest first) and keep the first that is provably a copy of this
        # order. Any later one is a duplicate for reconcile_pos; a look-alike (a restaurant's own
        # order "1001", another application's "bo-1001") is not ours and is never taken.
        # At most POS_SYNC_SEARCH_MAX_PAGES pages (the lease is derived from it), renewing the lease
        # after each one.
        pages = client.search_orders(
            location_id=credentials.location_id, created_since=since, max_pages=settings.POS_SYNC_SEARCH_MAX_PAGES
        )
        for page in renewing(pages, still_ours, what=f"SearchOrders for order {order.order_id}"):
            remotes = [_remote(o) for o in page]
            recorded = selectors.recorded_provider_orders(
                connection_id=credentials.connection_id,
                provider=self.name,
                provider_order_ids=[r.provider_order_id for r in remotes],
            )
            for square_order, remote in zip(page, remotes, strict=True):
                push = recorded.get(remote.provider_order_id)
                verdict = ownership.classify(
                    remote,
                    connection_id=credentials.connection_id,
                    location_id=credentials.location_id,
                    recorded_order_id=push.order_id if push else None,
                )
                if verdict.order_id == order.order_id:
                    return square_order
        return None


@contextmanager
def _as_provider_error() -> Iterator[None]:
    """Square's errors in the interface's terms: retryable or not, with a readable message."""
    try:
        yield
    except SquareTimeout as exc:
        raise ProviderError(PosSyncErrorCode.TIMEOUT, exc.message, retryable=True) from exc
    except SquareSearchTruncated as exc:
        # Creating now could duplicate an order on a page we did not read: a human looks instead.
        message = f"{exc.message} Nothing was created (POS_SYNC_SEARCH_MAX_PAGES)."
        raise ProviderError(PosSyncErrorCode.SEARCH_LIMIT_REACHED, message, retryable=False) from exc
    except SquareError as exc:
        code = PosSyncErrorCode.PROVIDER_UNAVAILABLE if exc.retryable else PosSyncErrorCode.PROVIDER_REJECTED
        raise ProviderError(code, exc.message, retryable=exc.retryable) from exc


def _remote(order: SquareOrder) -> RemoteOrder:
    return RemoteOrder(
        provider_order_id=order.id,
        reference_id=order.reference_id,
        created_at=order.created_at,
        location_id=order.location_id,
        metadata=dict(order.metadata),
        payments=tuple(
            RemotePayment(t.payment_id, t.amount, t.currency, refunded=t.payment_id in order.refunded_payment_ids)
            for t in order.tenders
        ),
    )
