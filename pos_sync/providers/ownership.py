"""Which orders at a POS are ours: the one decision that the push's look-up and reconcile share.

Every order we create at Square carries our mark: reference_id `bo-<order id>` (pos_sync.keys) and,
in the order's metadata, `bo_order_id` and `bo_connection_id`. The reference alone proves nothing:
it is free text that any integration (or a restaurant's own system numbering its orders "1001")
may write. The metadata is what proves it: Square keeps the entries an application writes private,
"Entries written by applications are private and can only be read or modified by the same
application" (https://developer.squareup.com/docs/build-basics/metadata, and
https://developer.squareup.com/docs/orders-api/metadata), so entries we read back were written by
us. Square's payments have no metadata field: a payment is only ever acted on as a tender of an
order that is ours.

An order is ours when it is at the connection's location and either
- our books recorded its provider id (a sync job's `provider_order_id`): how the orders pushed
  before the mark existed (bare reference "1001") are still known, or
- it carries the whole mark, and the mark agrees with itself (reference and `bo_order_id` name the
  same order) and with the connection (`bo_connection_id`).
Anything else is not ours and nothing acts on it. A not-ours order that looks like one of ours
(a bare numeric reference we never recorded, a `bo-` reference without our metadata, our metadata
naming another connection) is a look-alike: reconcile lists it for a human, never refunds it.
"""

import re
from dataclasses import dataclass

from pos_sync.keys import SQUARE_REFERENCE_PREFIX, square_reference_id
from pos_sync.providers.base import RemoteOrder

ORDER_ID_KEY = "bo_order_id"
CONNECTION_ID_KEY = "bo_connection_id"
_MARKED_REFERENCE = re.compile(re.escape(SQUARE_REFERENCE_PREFIX) + r"([1-9][0-9]{0,18})")
_BARE_REFERENCE = re.compile(r"[0-9]+")

OURS_MARKED = "ours: carries our mark"
OURS_RECORDED = "ours: recorded in our books"
NOT_OURS = "not ours"


@dataclass(frozen=True)
class Mark:
    reference_id: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class Verdict:
    order_id: int | None  # our order it is a copy of; None when it is not provably ours
    reason: str
    look_alike: bool = False  # not ours, but could be mistaken for ours: reported, never touched

    @property
    def ours(self) -> bool:
        return self.order_id is not None


def mark(*, order_id: int, connection_id: int) -> Mark:
    """What our push writes on the order it creates (and, the reference only, on its payment)."""
    return Mark(
        reference_id=square_reference_id(order_id),
        metadata={ORDER_ID_KEY: str(order_id), CONNECTION_ID_KEY: str(connection_id)},
    )


def classify(remote: RemoteOrder, *, connection_id: int, location_id: str, recorded_order_id: int | None) -> Verdict:
    """Is `remote` provably ours for this connection, and a copy of which of our orders?

    recorded_order_id: the order our books say this provider order became (None if we recorded no
    job with its id). Callers read it with selectors.recorded_provider_orders.
    """
    if remote.location_id != location_id:
        return Verdict(None, f"at location {remote.location_id!r}, not {location_id!r}", _looks_ours(remote))
    if recorded_order_id is not None:
        return Verdict(recorded_order_id, OURS_RECORDED)
    marked = _MARKED_REFERENCE.fullmatch(remote.reference_id)
    if marked is None:
        if _BARE_REFERENCE.fullmatch(remote.reference_id):
            return Verdict(None, "a bare number our books never recorded: not provably ours", look_alike=True)
        if _looks_ours(remote):
            return Verdict(None, "a reference or metadata like ours, but not the mark we write", look_alike=True)
        return Verdict(None, NOT_OURS)
    expected = mark(order_id=int(marked.group(1)), connection_id=connection_id)
    found = {key: remote.metadata.get(key) for key in expected.metadata}
    if not any(found.values()):
        return Verdict(None, "our reference without our metadata (written by another application)", look_alike=True)
    if found != expected.metadata:
        return Verdict(None, f"our metadata {found} disagrees with {expected.metadata}", look_alike=True)
    return Verdict(int(marked.group(1)), OURS_MARKED)


def _looks_ours(remote: RemoteOrder) -> bool:
    return bool(
        _BARE_REFERENCE.fullmatch(remote.reference_id)
        or remote.reference_id.startswith(SQUARE_REFERENCE_PREFIX)
        or ORDER_ID_KEY in remote.metadata
    )
