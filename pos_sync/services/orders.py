"""Restaurant orders: placing, closing (which queues the POS push) and voiding."""

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone

from audit.transitions import apply_transition
from core.actors import Actor
from core.errors import NotFound, ValidationError
from core.transactions import atomic
from pos_sync.errors import PosSyncErrorCode
from pos_sync.models import Order, OrderStatus, PosConnection
from pos_sync.services.queue import enqueue_sync_job


def place_order(
    *,
    connection_id: int,
    table_id: str,
    line_items: list[dict[str, Any]],
    currency: str,
    actor: Actor,
    placed_at: datetime | None = None,
) -> Order:
    """A new open order; the total is computed from the lines so that it always matches them
    (Square recomputes it from the lines and refuses a payment for any other amount)."""
    connection = PosConnection.objects.filter(pk=connection_id).first()
    if connection is None:
        raise NotFound(f"POS connection #{connection_id} does not exist.")
    lines = [_clean_line(line, i) for i, line in enumerate(line_items)]
    if not lines:
        raise ValidationError("An order needs at least one line.", code=PosSyncErrorCode.INVALID_ORDER_INPUT)
    total = sum((Decimal(line["unit_price"]) * line["quantity"] for line in lines), Decimal("0"))
    return Order.objects.create(
        connection=connection,
        table_id=table_id,
        line_items=lines,
        total=total,
        currency=currency.upper(),
        placed_at=placed_at or timezone.now(),
    )


def close_order(*, order_id: int, actor: Actor, reason: str = "") -> Order:
    """open -> closed (paid at the table) and, in the same transaction, one live sync job for the
    connection's provider: the order can never be closed without being queued for the POS."""
    with atomic():
        order = _get(order_id)
        apply_transition(instance=order, transition="close", actor=actor, expected=OrderStatus.OPEN, reason=reason)
        enqueue_sync_job(order_id=order.pk, actor=actor)
    return order


def void_order(*, order_id: int, actor: Actor, reason: str = "") -> Order:
    with atomic():
        order = _get(order_id)
        apply_transition(instance=order, transition="void", actor=actor, expected=OrderStatus.OPEN, reason=reason)
    return order


def _get(order_id: int) -> Order:
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        raise NotFound(f"Order #{order_id} does not exist.")
    return order


def _clean_line(line: dict[str, Any], index: int) -> dict[str, Any]:
    try:
        name = str(line["name"]).strip()
        quantity = int(line["quantity"])
        unit_price = Decimal(str(line["unit_price"]))
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise ValidationError(
            f"Line {index + 1} needs a name, an integer quantity and a unit_price.",
            code=PosSyncErrorCode.INVALID_ORDER_INPUT,
        ) from exc
    if not name or quantity < 1 or unit_price < 0 or unit_price != unit_price.quantize(Decimal("0.01")):
        raise ValidationError(
            f"Line {index + 1}: name required, quantity >= 1, unit_price >= 0 with at most 2 decimals.",
            code=PosSyncErrorCode.INVALID_ORDER_INPUT,
        )
    return {"name": name, "quantity": quantity, "unit_price": str(unit_price)}
