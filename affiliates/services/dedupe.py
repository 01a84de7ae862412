"""Backfill for the seed incident: duplicate TierEvents (same affiliate, same from -> to, within a
minute of the kept one) are marked superseded through the guarded transition, never deleted."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from affiliates.models import TierEvent, TierEventStatus
from audit.transitions import apply_transition
from core.actors import Actor
from core.errors import Conflict
from core.transactions import atomic

DEDUPE_WINDOW = timedelta(minutes=1)


@dataclass
class DuplicateRun:
    """The earliest active event of a change and the active copies that followed it within the window."""

    affiliate_id: int
    from_rate: int
    to_rate: int
    kept_id: int
    kept_at: datetime
    duplicate_ids: list[int] = field(default_factory=list)


def find_duplicate_tier_events(*, window: timedelta = DEDUPE_WINDOW) -> list[DuplicateRun]:
    """Runs with at least one duplicate, in (affiliate, from, to, time) order. One streamed query.

    "Within a minute" is measured from the kept event, not by clock minute, so a pair one second
    apart across a minute boundary (12:00:59.6 / 12:01:00.4) is caught. A copy more than a minute
    later starts a new run; superseded rows are ignored, so a second pass finds nothing new.
    """
    return [run for run in _runs(window) if run.duplicate_ids]


def _runs(window: timedelta) -> Iterator[DuplicateRun]:
    rows = (
        TierEvent.objects.filter(status=TierEventStatus.ACTIVE)
        .order_by("affiliate_id", "from_rate", "to_rate", "created_at", "id")
        .values_list("id", "affiliate_id", "from_rate", "to_rate", "created_at")
    )
    run: DuplicateRun | None = None
    for event_id, affiliate_id, from_rate, to_rate, created_at in rows.iterator(chunk_size=2000):
        if (
            run is not None
            and (run.affiliate_id, run.from_rate, run.to_rate) == (affiliate_id, from_rate, to_rate)
            and created_at - run.kept_at < window
        ):
            run.duplicate_ids.append(event_id)
            continue
        if run is not None:
            yield run
        run = DuplicateRun(affiliate_id, from_rate, to_rate, kept_id=event_id, kept_at=created_at)
    if run is not None:
        yield run


def supersede_tier_events(*, event_ids: Sequence[int], actor: Actor, reason: str) -> int:
    """Mark the events superseded; returns how many this call changed.

    Safety: state machine (active -> superseded only) and race guard: an event a concurrent run
    superseded first raises Conflict, which here means "someone else did it" and is skipped.
    """
    changed = 0
    for event in TierEvent.objects.filter(pk__in=event_ids, status=TierEventStatus.ACTIVE).order_by("pk"):
        try:
            with atomic():
                apply_transition(
                    instance=event, transition="supersede", actor=actor, expected=TierEventStatus.ACTIVE, reason=reason
                )
        except Conflict:
            continue
        changed += 1
    return changed
