"""Reconcile: find orders that reached the POS more than once and refund the extra payments.

Reads the provider (SearchOrders, paged) for each connection, groups the orders by reference_id
(our order id), keeps one per group (the one our successful sync job recorded, else the oldest)
and reports every other one with its payments. Refunding is opt-in and idempotent twice over: a
payment already refunded is skipped, and the refund carries a key derived from the payment id,
so a repeated run (or a retried call) gets the first refund back instead of a second one.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from core.actors import Actor, actor_label
from pos_sync import selectors
from pos_sync.errors import PosSyncErrorCode
from pos_sync.models import PosConnection
from pos_sync.providers import get_provider
from pos_sync.providers.base import Credentials, PosProvider, ProviderError, RemoteOrder, RemotePayment
from pos_sync.services.connections import connection_credentials

logger = structlog.get_logger("pos_sync")

REFUNDED, ALREADY_REFUNDED, WOULD_REFUND, REPORTED, FAILED = (
    "refunded",
    "already refunded",
    "would refund",
    "reported",
    "refund failed",
)
REFUND_REASON = "Duplicate POS order {extra} for order {reference} (kept {kept})"


@dataclass
class DuplicatePayment:
    reference_id: str
    kept_order_id: str
    extra_order_id: str
    payment: RemotePayment
    action: str = REPORTED
    refund_id: str = ""
    error: str = ""


@dataclass
class ConnectionReconcile:
    connection_id: int
    restaurant: str
    orders_scanned: int = 0
    duplicate_groups: int = 0
    extra_orders: int = 0
    duplicates: list[DuplicatePayment] = field(default_factory=list)
    error: str = ""  # the POS could not be read: the run is incomplete
    skipped: str = ""  # nothing to read with (no token or location): we never pushed there

    def count(self, action: str) -> int:
        return sum(1 for d in self.duplicates if d.action == action)


def reconcile_connection(
    *,
    connection: PosConnection,
    since: datetime,
    actor: Actor,
    refund: bool = False,
    dry_run: bool = False,
    on_page: Callable[[int], object] | None = None,
) -> ConnectionReconcile:
    """Find (and with refund=True, unless dry_run, refund) the duplicates at one connection's POS.

    Moves money back. Safety: it reads first (a payment the POS shows as refunded is skipped) and
    every refund carries a key derived only from the payment id (provider idempotency), so a
    retried call or a second run cannot refund a payment twice. Our own copy is never refunded:
    the kept order is the one our successful job recorded.
    """
    report = ConnectionReconcile(connection_id=connection.pk, restaurant=connection.restaurant_name)
    try:
        provider = get_provider(connection.provider)
        credentials = connection_credentials(connection)
        orders = _list_orders(provider, credentials, since, on_page)
    except ProviderError as error:
        if error.code == PosSyncErrorCode.MISSING_CREDENTIALS:
            report.skipped = error.message
        else:
            report.error = str(error)
        return report
    report.orders_scanned = len(orders)
    _collect_duplicates(report, orders, provider_name=connection.provider)
    if refund:
        for duplicate in report.duplicates:
            _refund(duplicate, provider=provider, credentials=credentials, actor=actor, dry_run=dry_run)
    return report


def _list_orders(
    provider: PosProvider, credentials: Credentials, since: datetime, on_page: Callable[[int], object] | None
) -> list[RemoteOrder]:
    orders: list[RemoteOrder] = []
    for page in provider.list_orders(credentials=credentials, since=since):
        orders.extend(page)
        if on_page is not None:
            on_page(len(page))
    return orders


def _collect_duplicates(report: ConnectionReconcile, orders: list[RemoteOrder], *, provider_name: str) -> None:
    groups: dict[str, list[RemoteOrder]] = defaultdict(list)
    for order in orders:
        if order.reference_id.isdigit():  # ours: the reference id is our order id
            groups[order.reference_id].append(order)
    duplicated = {ref: group for ref, group in groups.items() if len(group) > 1}
    recorded = selectors.recorded_provider_order_ids(order_ids=[int(r) for r in duplicated], provider=provider_name)
    for reference_id, group in sorted(duplicated.items(), key=lambda item: int(item[0])):
        kept = _kept(group, recorded.get(int(reference_id)))
        extras = [o for o in group if o is not kept]
        report.duplicate_groups += 1
        report.extra_orders += len(extras)
        for extra in extras:
            for payment in extra.payments:
                report.duplicates.append(
                    DuplicatePayment(
                        reference_id=reference_id,
                        kept_order_id=kept.provider_order_id,
                        extra_order_id=extra.provider_order_id,
                        payment=payment,
                        action=ALREADY_REFUNDED if payment.refunded else REPORTED,
                    )
                )


def _kept(group: list[RemoteOrder], recorded_id: str | None) -> RemoteOrder:
    """The order our books point at, when we recorded one; otherwise the first one created."""
    for order in group:
        if order.provider_order_id == recorded_id:
            return order
    return min(group, key=lambda o: (o.created_at, o.provider_order_id))


def _refund(
    duplicate: DuplicatePayment, *, provider: PosProvider, credentials: Credentials, actor: Actor, dry_run: bool
) -> None:
    if duplicate.action == ALREADY_REFUNDED:
        return
    if dry_run:
        duplicate.action = WOULD_REFUND
        return
    reason = REFUND_REASON.format(
        extra=duplicate.extra_order_id, reference=duplicate.reference_id, kept=duplicate.kept_order_id
    )
    try:
        duplicate.refund_id = provider.refund_payment(credentials=credentials, payment=duplicate.payment, reason=reason)
    except ProviderError as error:
        duplicate.action, duplicate.error = FAILED, str(error)
        return
    duplicate.action = REFUNDED
    logger.warning(
        "pos_sync.duplicate_refunded",
        payment_id=duplicate.payment.payment_id,
        refund_id=duplicate.refund_id,
        order_id=duplicate.reference_id,
        extra_order_id=duplicate.extra_order_id,
        amount=duplicate.payment.amount,
        currency=duplicate.payment.currency,
        actor=actor_label(actor),
    )
