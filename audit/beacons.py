"""Race beacons: a structured `[BEACON:<kind>]` log line plus a per-kind, per-hour counter.

A beacon is usually emitted on the way out of a failing transaction (a lost race raises Conflict,
which rolls the caller's transaction back). A counter written inside that transaction would vanish
with it, so inside a transaction the increment is queued and written by `flush_pending_beacons()`
once the outermost transaction has ended (core.transactions.atomic calls it on exit; request and
task teardown call it as a safety net). Outside a transaction it is written at once.

A beacon of a critical kind (audit.severity) also keeps its details, one CriticalBeacon row each,
written the same way: the alert raised on its first occurrence names the object from them.
"""

import json
import threading
from datetime import datetime

import structlog
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from audit.models import BeaconCount, CriticalBeacon
from audit.severity import beacon_kind
from core.context import current_correlation_id

logger = structlog.get_logger("beacon")
_pending = threading.local()


def emit_beacon(kind: str, **context: object) -> None:
    correlation = current_correlation_id()
    logger.warning(f"[BEACON:{kind}]", beacon=kind, correlation_id=correlation, **context)
    now = timezone.now()
    occurrence = None
    if beacon_kind(kind).critical:
        occurrence = CriticalBeacon(
            kind=kind, hour=_hour(now), at=now, details=_jsonable(context), correlation_id=correlation
        )
    if in_open_transaction():
        _queue().append((kind, _hour(now), occurrence))
    else:
        _write(kind, _hour(now), occurrence)


def flush_pending_beacons() -> None:
    """Write queued counters, unless a transaction that could still roll them back is open."""
    if in_open_transaction():
        return
    queue = _queue()
    while queue:
        _write(*queue.pop(0))


def in_open_transaction(using: str = DEFAULT_DB_ALIAS) -> bool:
    # Django's TestCase wraps each test in atomic blocks marked _from_testcase; they stand for
    # "no transaction" in production, so they do not count as open here.
    connection = connections[using]
    return connection.in_atomic_block and not all(
        getattr(block, "_from_testcase", False) for block in connection.atomic_blocks
    )


def _queue() -> list[tuple[str, datetime, CriticalBeacon | None]]:
    if not hasattr(_pending, "queue"):
        _pending.queue = []
    return _pending.queue


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _jsonable(context: dict[str, object]) -> dict[str, object]:
    # Details are whatever the caller had at hand (a Decimal, a datetime, an exception's text):
    # stored as their JSON form, anything else as its str(), never refused.
    return json.loads(json.dumps(context, default=str))


def _write(kind: str, hour: datetime, occurrence: CriticalBeacon | None) -> None:
    # The details first: an alert run that sees the count then always finds the object to name.
    if occurrence is not None:
        occurrence.save(force_insert=True)
    _increment(kind, hour)


def _increment(kind: str, hour: datetime) -> None:
    table = BeaconCount._meta.db_table
    # One statement, safe under concurrency on PostgreSQL and SQLite alike.
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (kind, hour, count) VALUES (%s, %s, 1) "
            f"ON CONFLICT (kind, hour) DO UPDATE SET count = {table}.count + 1",
            [kind, hour],
        )
