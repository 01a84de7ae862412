"""Idempotency claims: one INSERT ... ON CONFLICT decides who does a piece of work.

    with claimed("email:loyalty:42") as claim:
        if not claim.won:
            return                      # someone else has done, or is doing, it
        send_the_email()                # an exception here releases the claim ...
                                        # ... unless it is one of keep_on (an ambiguous outcome)

Claims back work that has no natural unique row (an email, a push to a provider). A claim with a
lease can be taken over once the lease has run out and it was never completed: its holder died.
Long work renews its lease as it goes (`renew`), and learns from the same statement whether it
still holds the claim.

The database's clock decides every lease, never the caller's: a worker whose clock runs ahead
cannot take a live claim over, and one whose clock runs behind cannot stretch its own lease.
It is clock_timestamp(), not now(): now() is transaction_timestamp(), frozen when the transaction
began, and claims are taken inside transactions (the POS drain claims a whole batch in one, and an
INSERT can wait on a competitor's row lock). A lease counted from now() would be shorter than asked
by the transaction's age (a renewal inside a long transaction could even land in the past), and a
takeover would be judged against a moment already gone; statement_timestamp() goes stale the same
way during a lock wait. clock_timestamp() is the database's wall clock when the row is written. A
lease therefore starts before the claim commits: core.leases' margin covers that short gap.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection

from core.errors import ErrorCode, ValidationError
from core.models import Claim

MAX_KEY_LENGTH = 255
TABLE = Claim._meta.db_table

# The database's clock at the moment the row is written, read once for both columns. On a conflict
# the new lease is read again after the competitor's row lock is ours (EXCLUDED holds the values
# computed before a possible wait for it), and the takeover is judged at that moment too.
_CLAIM_POSTGRESQL = (
    f"INSERT INTO {TABLE} AS held (key, token, claimed_at, lease_expires_at, completed_at) "
    "SELECT %s, %s, db_clock.moment, db_clock.moment + %s::interval, NULL FROM clock_timestamp() AS db_clock(moment) "
    "ON CONFLICT (key) DO UPDATE SET token = EXCLUDED.token, (claimed_at, lease_expires_at) = "
    "(SELECT db_clock.moment, db_clock.moment + %s::interval FROM clock_timestamp() AS db_clock(moment)) "
    "WHERE held.completed_at IS NULL AND held.lease_expires_at IS NOT NULL "
    "AND held.lease_expires_at < clock_timestamp()"
)
_CLAIM_SQLITE = (
    "INSERT INTO {table} (key, token, claimed_at, lease_expires_at, completed_at) "
    "VALUES (%s, %s, {now}, {expires}, NULL) "
    "ON CONFLICT (key) DO UPDATE SET token = excluded.token, claimed_at = excluded.claimed_at, "
    "lease_expires_at = excluded.lease_expires_at "
    "WHERE {table}.completed_at IS NULL AND {table}.lease_expires_at IS NOT NULL "
    "AND {table}.lease_expires_at < excluded.claimed_at"
)


@dataclass(frozen=True)
class ClaimToken:
    key: str
    token: str
    won: bool


def claim(key: str, *, lease: timedelta | None = None) -> ClaimToken:
    """Take `key` if nobody holds it (or the holder's lease ran out, by the database's clock). One statement."""
    _validate_key(key)
    token = uuid.uuid4().hex  # identifies this holder only; never sent to a provider
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_CLAIM_POSTGRESQL, _params(key, token, lease, lease))
        else:
            expires, params = _sqlite_clock(lease) if lease is not None else ("NULL", [])
            sql = _CLAIM_SQLITE.format(table=TABLE, now=_sqlite_clock(None)[0], expires=expires)
            cursor.execute(sql, _params(key, token, *params))
        won = cursor.rowcount == 1
    return ClaimToken(key=key, token=token, won=won)


def renew(held: ClaimToken, lease: timedelta) -> bool:
    """Heartbeat: extend our lease to `lease` from now (the database's now), if we still hold the
    claim. False: it was taken over (our lease ran out and someone claimed it), released or
    completed: stop, and leave the work to whoever holds it. One guarded UPDATE."""
    expires, params = _clock(lease)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET lease_expires_at = {expires} WHERE key = %s AND token = %s AND completed_at IS NULL",
            _params(*params, held.key, held.token),
        )
        return cursor.rowcount == 1


def release(held: ClaimToken) -> bool:
    """Give the work back: only when the side effect certainly did not happen."""
    return Claim.objects.filter(key=held.key, token=held.token, completed_at__isnull=True).delete()[0] == 1


def complete(held: ClaimToken) -> bool:
    """Mark the work done for good: the claim can no longer be taken over."""
    now, params = _clock(None)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET completed_at = {now}, lease_expires_at = NULL WHERE key = %s AND token = %s",
            _params(*params, held.key, held.token),
        )
        return cursor.rowcount == 1


def is_claimed(key: str) -> bool:
    return Claim.objects.filter(key=key).exists()


@contextmanager
def claimed(
    key: str,
    *,
    lease: timedelta | None = None,
    keep_on: tuple[type[BaseException], ...] = (),
) -> Iterator[ClaimToken]:
    held = claim(key, lease=lease)
    if not held.won:
        yield held
        return
    try:
        yield held
    except keep_on:
        # The side effect may have happened (a timeout after the provider committed): keep the
        # claim so nobody repeats it before the lease runs out and a reconcile can look first.
        raise
    except BaseException:
        release(held)
        raise
    else:
        complete(held)


def _clock(lease: timedelta | None) -> tuple[str, list[Any]]:
    """SQL for the database's clock now (plus `lease`), and its parameters."""
    if connection.vendor == "postgresql":
        return ("clock_timestamp()", []) if lease is None else ("clock_timestamp() + %s::interval", [lease])
    return _sqlite_clock(lease)


def _sqlite_clock(lease: timedelta | None) -> tuple[str, list[Any]]:
    # The demo's SQLite runs in our process, so its clock is ours anyway; its 'now' is fixed for the
    # whole statement. Written in the text form Django stores datetimes in (UTC, compared as text).
    if lease is None:
        return "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now')", []
    return "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', %s)", [f"{lease.total_seconds():+.6f} seconds"]


def _params(*values: Any) -> list[Any]:
    # A timedelta is adapted to an interval by psycopg; django-stubs' parameter type leaves it out.
    return list(values)


def _validate_key(key: str) -> None:
    if not isinstance(key, str) or not key.strip():
        raise ValidationError("A claim key must be a non-empty string.", code=ErrorCode.INVALID_CLAIM_KEY)
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError(
            f"A claim key may have at most {MAX_KEY_LENGTH} characters, got {len(key)}.",
            code=ErrorCode.INVALID_CLAIM_KEY,
        )
