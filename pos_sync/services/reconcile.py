"""Reconcile: find the copies of our orders that reached the POS more than once, and refund them.

Reads each connection's POS (SearchOrders, paged) and sorts every order it finds with
pos_sync.providers.ownership, the same decision the push's look-up makes:
- ours: provably a copy of one of our orders (our mark, or its id recorded in our books). Per order
  of ours one copy is kept (the one our latest sync job recorded, else the oldest); every other copy
  is a duplicate, and its payments are the ones to refund.
- not ours: everything else (a restaurant's own orders, other integrations'). Never touched. Those
  that look like ours (a bare reference "1001" from before our mark that our books never recorded,
  another application's "bo-1001") are listed by name for a human to look at.

reconcile_connection only reads. refund_duplicates moves money back, and only when the number of
refunds the caller expects is the number planned, over connections that were all read.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from audit.beacons import emit_beacon
from core.actors import Actor, actor_label
from core.errors import BusinessRuleViolation
from pos_sync import selectors
from pos_sync.beacons import RECONCILE_NOT_OURS, RECONCILE_NOT_OURS_ALERT_AT
from pos_sync.errors import PosSyncErrorCode
from pos_sync.models import PosConnection
from pos_sync.providers import get_provider, ownership
from pos_sync.providers.base import Credentials, PosProvider, ProviderError, RemoteOrder, RemotePayment
from pos_sync.selectors import RecordedPush
from pos_sync.services.connections import connection_credentials

logger = structlog.get_logger("pos_sync")

TO_REFUND, REFUNDED, ALREADY_REFUNDED, FAILED = "to refund", "refunded", "already refunded", "refund failed"
REFUND_REASON = "Duplicate POS order {extra} for order {order} (kept {kept})"


@dataclass
class DuplicatePayment:
    order_id: int  # our order, of which `extra_order_id` is a provable extra copy
    kept_order_id: str
    extra_order_id: str
    payment: RemotePayment
    action: str = TO_REFUND
    refund_id: str = ""
    error: str = ""


@dataclass(frozen=True)
class LookAlike:
    """An order that is not provably ours but could be taken for ours: listed, never touched."""

    provider_order_id: str
    reference_id: str
    reason: str


@dataclass
class ConnectionReconcile:
    connection: PosConnection = field(repr=False)
    orders_scanned: int = 0
    ours: int = 0  # provable copies of our orders, the kept ones and the duplicates
    duplicate_orders: int = 0  # provable extra copies of our orders
    not_ours: int = 0
    planned: int = 0  # payments of duplicates to refund, as read
    look_alikes: list[LookAlike] = field(default_factory=list)
    duplicates: list[DuplicatePayment] = field(default_factory=list)
    error: str = ""  # the POS could not be read: the run is incomplete
    skipped: str = ""  # nothing to read with (no token or location): we never pushed there

    @property
    def restaurant(self) -> str:
        return self.connection.restaurant_name

    def count(self, action: str) -> int:
        return sum(1 for d in self.duplicates if d.action == action)


def reconcile_connection(
    *, connection: PosConnection, since: datetime, on_page: Callable[[int], object] | None = None
) -> ConnectionReconcile:
    """Read one connection's POS since `since` and sort what is there; changes nothing."""
    report = ConnectionReconcile(connection=connection)
    try:
        provider = get_provider(connection.provider)
        orders = _list_orders(provider, connection_credentials(connection), since, on_page)
    except ProviderError as error:
        if error.code == PosSyncErrorCode.MISSING_CREDENTIALS:
            report.skipped = error.message
        else:
            report.error = str(error)
        return report
    report.orders_scanned = len(orders)
    recorded = selectors.recorded_provider_orders(
        connection_id=connection.pk,
        provider=connection.provider,
        provider_order_ids=[o.provider_order_id for o in orders],
    )
    _collect_duplicates(report, _ours_by_order(report, orders, recorded), recorded)
    report.planned = report.count(TO_REFUND)
    _alert_on_look_alikes(report, since)
    return report


def _alert_on_look_alikes(report: ConnectionReconcile, since: datetime) -> None:
    """Many look-alikes at one POS (our reference without our mark, our mark naming another
    connection): someone writes there with our references, or the connection points at the wrong
    place. A critical beacon: a human looks at once. Plain staff orders do not count."""
    if len(report.look_alikes) < RECONCILE_NOT_OURS_ALERT_AT:
        return
    emit_beacon(
        RECONCILE_NOT_OURS,
        connection_id=report.connection.pk,  # the alert names pos_sync.PosConnection #<id> and links to it
        look_alikes=len(report.look_alikes),
        not_ours=report.not_ours,
        orders_scanned=report.orders_scanned,
        since=since.isoformat(),
        examples=[(a.provider_order_id, a.reference_id, a.reason) for a in report.look_alikes[:10]],
    )


def refund_duplicates(*, reports: list[ConnectionReconcile], expected: int, actor: Actor) -> None:
    """Refund every payment `reports` planned to refund, if and only if there are `expected` of them.

    Moves money back. Safety: ownership (only payments on provable extra copies of our orders are
    ever planned, never a look-alike nor the copy our books keep); the operator's count (`expected`
    must equal the plan, read just now, else nothing is refunded: a plan that grew since the dry
    run is looked at again first); completeness (a POS that could not be read refuses the whole
    run); provider idempotency (a payment already refunded is skipped and every refund carries a
    key derived only from the payment id, so a retry or a second run cannot refund twice).
    """
    unread = [r.restaurant for r in reports if r.error]
    if unread:
        raise BusinessRuleViolation(
            f"Could not read the POS of {', '.join(unread)}: nothing was refunded.",
            code=PosSyncErrorCode.RECONCILE_INCOMPLETE,
        )
    planned = sum(r.planned for r in reports)
    if planned != expected:
        raise BusinessRuleViolation(
            f"{planned} refund(s) planned but {expected} expected: nothing was refunded.",
            code=PosSyncErrorCode.REFUND_COUNT_MISMATCH,
            planned=planned,
            expected=expected,
        )
    for report in reports:
        if report.planned:
            provider = get_provider(report.connection.provider)
            credentials = connection_credentials(report.connection)
            for duplicate in report.duplicates:
                if duplicate.action == TO_REFUND:
                    _refund(duplicate, provider=provider, credentials=credentials, actor=actor)


def _list_orders(
    provider: PosProvider, credentials: Credentials, since: datetime, on_page: Callable[[int], object] | None
) -> list[RemoteOrder]:
    orders: list[RemoteOrder] = []
    for page in provider.list_orders(credentials=credentials, since=since):
        orders.extend(page)
        if on_page is not None:
            on_page(len(page))
    return orders


def _ours_by_order(
    report: ConnectionReconcile, orders: list[RemoteOrder], recorded: dict[str, RecordedPush]
) -> dict[int, list[RemoteOrder]]:
    connection = report.connection
    ours: dict[int, list[RemoteOrder]] = defaultdict(list)
    for order in orders:
        push = recorded.get(order.provider_order_id)
        verdict = ownership.classify(
            order,
            connection_id=connection.pk,
            location_id=connection.location_id,
            recorded_order_id=push.order_id if push else None,
        )
        if verdict.order_id is not None:
            ours[verdict.order_id].append(order)
            report.ours += 1
            continue
        report.not_ours += 1
        if verdict.look_alike:
            report.look_alikes.append(LookAlike(order.provider_order_id, order.reference_id, verdict.reason))
    return ours


def _collect_duplicates(
    report: ConnectionReconcile, ours: dict[int, list[RemoteOrder]], recorded: dict[str, RecordedPush]
) -> None:
    for order_id, copies in sorted(ours.items()):
        kept = _kept(copies, recorded)
        for extra in copies:
            if extra is kept:
                continue
            report.duplicate_orders += 1
            for payment in extra.payments:
                report.duplicates.append(
                    DuplicatePayment(
                        order_id=order_id,
                        kept_order_id=kept.provider_order_id,
                        extra_order_id=extra.provider_order_id,
                        payment=payment,
                        action=ALREADY_REFUNDED if payment.refunded else TO_REFUND,
                    )
                )


def _kept(copies: list[RemoteOrder], recorded: dict[str, RecordedPush]) -> RemoteOrder:
    """The copy our books point at (the latest job that recorded one), else the first created.
    If the copy our books point at is older than the window read, one of the newer copies is kept:
    reconcile may refund too little, never our own copy."""
    in_books = [o for o in copies if o.provider_order_id in recorded]
    if in_books:
        return max(in_books, key=lambda o: recorded[o.provider_order_id].job_id)
    return min(copies, key=lambda o: (o.created_at, o.provider_order_id))


def _refund(duplicate: DuplicatePayment, *, provider: PosProvider, credentials: Credentials, actor: Actor) -> None:
    reason = REFUND_REASON.format(
        extra=duplicate.extra_order_id, order=duplicate.order_id, kept=duplicate.kept_order_id
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
        order_id=duplicate.order_id,
        extra_order_id=duplicate.extra_order_id,
        amount=duplicate.payment.amount,
        currency=duplicate.payment.currency,
        actor=actor_label(actor),
    )
