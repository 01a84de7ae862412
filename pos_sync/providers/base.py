"""What the sync queue needs from a POS provider, and the plain values that cross that line.

A provider pushes one order (idempotently, with keys derived from our ids), lists the orders it
holds for a location, and refunds a payment. Adding Lightspeed means one more class with these
three methods, registered in pos_sync.providers.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol, TypeVar

from core import currencies
from core.errors import ValidationError
from pos_sync.errors import PosSyncErrorCode

T = TypeVar("T")

# Currencies whose minor unit is not 1/100 (ISO 4217); the rest have two decimals.


class ProviderError(Exception):
    """A push or a provider call that did not succeed.

    retryable: a later attempt (with the same keys) may succeed: timeouts, 5xx, lost connections.
    Not retryable: bad input (unknown provider, no token, a 4xx): the job goes to the dead letters.
    """

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class LeaseLost(Exception):
    """The push stopped because the caller's lease on it ran out and another worker took the job
    over: nothing more was sent, and the job's outcome is the new holder's to record."""


def renewing(pages: Iterator[T], still_ours: Callable[[], bool], *, what: str) -> Iterator[T]:
    """The pages of a long read, with the heartbeat after each one the caller did not stop at."""
    for page in pages:
        yield page
        if not still_ours():
            raise LeaseLost(f"{what}: the lease ran out and another worker took the job over.")


@dataclass(frozen=True)
class Credentials:
    access_token: str
    location_id: str
    connection_id: int  # whose: part of the mark on what we create (pos_sync.providers.ownership)


@dataclass(frozen=True)
class OrderLine:
    name: str
    quantity: int
    unit_amount: int  # minor units


@dataclass(frozen=True)
class OrderToPush:
    order_id: int
    table_id: str
    currency: str
    total_amount: int  # minor units
    lines: tuple[OrderLine, ...]


@dataclass(frozen=True)
class PushResult:
    provider_order_id: str
    provider_payment_id: str
    found_existing: bool = False  # looked up at the provider instead of created


@dataclass(frozen=True)
class RemotePayment:
    payment_id: str
    amount: int
    currency: str
    refunded: bool


@dataclass(frozen=True)
class RemoteOrder:
    provider_order_id: str
    reference_id: str
    created_at: str
    payments: tuple[RemotePayment, ...]
    location_id: str = ""
    metadata: dict[str, str] = field(default_factory=dict)  # only the entries our application wrote


class PosProvider(Protocol):
    name: str
    idempotency_window: timedelta  # how long a resent key is surely recognised; past it, read first

    def push(
        self,
        *,
        order: OrderToPush,
        credentials: Credentials,
        look_up_since: datetime | None,
        still_ours: Callable[[], bool],
    ) -> PushResult:
        """Create the order and its payment at the provider, exactly once per order.

        still_ours: the caller's heartbeat. It renews the caller's lease on this work and says
        whether the caller still holds it. Call it between the pages of a long read and right before
        creating anything; on False create nothing and raise LeaseLost: another worker has the job.

        look_up_since: set when the provider's idempotency window may have passed since the first
        attempt; the provider must then look for an order that is provably ours
        (pos_sync.providers.ownership) before creating.
        Raises ProviderError.
        """
        ...

    def list_orders(self, *, credentials: Credentials, since: datetime) -> Iterator[list[RemoteOrder]]:
        """The location's orders created since `since`, page by page. Raises ProviderError."""
        ...

    def refund_payment(self, *, credentials: Credentials, payment: RemotePayment, reason: str) -> str:
        """Refund what is left of `payment`, idempotently per payment; returns the refund id."""
        ...


def to_minor_units(amount: Decimal | str, currency: str) -> int:
    """Square amounts are in the currency's smallest ISO 4217 unit (cents for USD, yen for JPY):
    the product's one currency table decides, and an amount it refuses is never sent."""
    try:
        return currencies.to_minor(Decimal(amount), currency)
    except ValidationError as exc:
        raise ProviderError(
            PosSyncErrorCode.INVALID_ORDER, f"{amount} {currency} cannot be sent: {exc.message}.", retryable=False
        ) from exc


def from_minor_units(amount: int, currency: str) -> Decimal:
    return currencies.from_minor(amount, currency)
