"""Idempotency claims: one INSERT ... ON CONFLICT decides who does a piece of work.

    with claimed("email:loyalty:42") as claim:
        if not claim.won:
            return                      # someone else has done, or is doing, it
        send_the_email()                # an exception here releases the claim ...
                                        # ... unless it is one of keep_on (an ambiguous outcome)

Claims back work that has no natural unique row (an email, a push to a provider). A claim with a
lease can be taken over once the lease has run out and it was never completed: its holder died.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from core.errors import ErrorCode, ValidationError
from core.models import Claim

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class ClaimToken:
    key: str
    token: str
    won: bool


def claim(key: str, *, lease: timedelta | None = None) -> ClaimToken:
    """Take `key` if nobody holds it (or the holder's lease ran out). One statement."""
    _validate_key(key)
    now = timezone.now()
    token = uuid.uuid4().hex  # identifies this holder only; never sent to a provider
    expires = now + lease if lease else None
    table = Claim._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (key, token, claimed_at, lease_expires_at, completed_at) "
            "VALUES (%s, %s, %s, %s, NULL) "
            "ON CONFLICT (key) DO UPDATE SET token = EXCLUDED.token, claimed_at = EXCLUDED.claimed_at, "
            "lease_expires_at = EXCLUDED.lease_expires_at "
            f"WHERE {table}.completed_at IS NULL AND {table}.lease_expires_at IS NOT NULL "
            f"AND {table}.lease_expires_at < %s",
            [key, token, now, expires, now],
        )
        won = cursor.rowcount == 1
    return ClaimToken(key=key, token=token, won=won)


def release(held: ClaimToken) -> bool:
    """Give the work back: only when the side effect certainly did not happen."""
    return Claim.objects.filter(key=held.key, token=held.token, completed_at__isnull=True).delete()[0] == 1


def complete(held: ClaimToken) -> bool:
    """Mark the work done for good: the claim can no longer be taken over."""
    updated = Claim.objects.filter(key=held.key, token=held.token).update(
        completed_at=timezone.now(), lease_expires_at=None
    )
    return updated == 1


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


def _validate_key(key: str) -> None:
    if not isinstance(key, str) or not key.strip():
        raise ValidationError("A claim key must be a non-empty string.", code=ErrorCode.INVALID_CLAIM_KEY)
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError(
            f"A claim key may have at most {MAX_KEY_LENGTH} characters, got {len(key)}.",
            code=ErrorCode.INVALID_CLAIM_KEY,
        )
