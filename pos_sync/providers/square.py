"""Square behind the PosProvider interface: CreateOrder + an EXTERNAL CreatePayment per order.

Provider idempotency: both calls carry keys derived only from our order id (pos_sync.keys), so a
retry after a timeout gets Square's first result back instead of a second order or payment.
Square does not publish how long it keeps keys: once IDEMPOTENCY_WINDOW may have passed since the
first attempt, the push first reads (SearchOrders, matched on reference_id) and only creates what
it does not find.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from pos_sync.clients.square import (
    SquareClient,
    SquareError,
    SquareLineItem,
    SquareOrder,
    SquareTimeout,
    square_client,
)
from pos_sync.errors import PosSyncErrorCode
from pos_sync.keys import square_order_key, square_payment_key, square_refund_key
from pos_sync.providers.base import (
    Credentials,
    OrderToPush,
    ProviderError,
    PushResult,
    RemoteOrder,
    RemotePayment,
)

IDEMPOTENCY_WINDOW = timedelta(hours=24)
PAYMENT_SOURCE = "Restaurant POS (back office sync)"


class SquareProvider:
    name = "square"
    idempotency_window = IDEMPOTENCY_WINDOW

    def push(self, *, order: OrderToPush, credentials: Credentials, look_up_since: datetime | None) -> PushResult:
        client = self._client(credentials)
        with _as_provider_error():
            existing = self._find(client, order, credentials, look_up_since) if look_up_since else None
            if existing is not None and existing.tenders:
                return PushResult(existing.id, existing.tenders[0].payment_id, found_existing=True)
            remote = existing or client.create_order(
                idempotency_key=square_order_key(order.order_id),
                location_id=credentials.location_id,
                reference_id=order.reference_id,
                line_items=[SquareLineItem(line.name, line.quantity, line.unit_amount) for line in order.lines],
                currency=order.currency,
                ticket_name=f"Table {order.table_id}",
            )
            payment_id = client.create_external_payment(
                idempotency_key=square_payment_key(order.order_id),
                order_id=remote.id,
                location_id=credentials.location_id,
                amount=order.total_amount,
                currency=order.currency,
                reference_id=order.reference_id,
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
        self, client: SquareClient, order: OrderToPush, credentials: Credentials, since: datetime
    ) -> SquareOrder | None:
        # SearchOrders cannot filter on reference_id: read the location's orders created since the
        # first attempt (oldest first) and match. The oldest match is the one to keep; any later
        # one is a duplicate for reconcile_pos to refund.
        for page in client.search_orders(location_id=credentials.location_id, created_since=since):
            for remote in page:
                if remote.reference_id == order.reference_id:
                    return remote
        return None


@contextmanager
def _as_provider_error() -> Iterator[None]:
    """Square's errors in the interface's terms: retryable or not, with a readable message."""
    try:
        yield
    except SquareTimeout as exc:
        raise ProviderError(PosSyncErrorCode.TIMEOUT, exc.message, retryable=True) from exc
    except SquareError as exc:
        code = PosSyncErrorCode.PROVIDER_UNAVAILABLE if exc.retryable else PosSyncErrorCode.PROVIDER_REJECTED
        raise ProviderError(code, exc.message, retryable=exc.retryable) from exc


def _remote(order: SquareOrder) -> RemoteOrder:
    return RemoteOrder(
        provider_order_id=order.id,
        reference_id=order.reference_id,
        created_at=order.created_at,
        payments=tuple(
            RemotePayment(t.payment_id, t.amount, t.currency, refunded=t.payment_id in order.refunded_payment_ids)
            for t in order.tenders
        ),
    )
