"""manage.py dedupe_tier_events on a seeded data set: 23 affiliates, 47 duplicates, plus look-alikes."""

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from affiliates.models import TierEvent
from audit.models import AuditEntry
from tests.concurrency import race
from tests.factories.affiliates import AffiliateFactory, TierEventFactory

BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PROMOTE, DEMOTE = (20, 25), (25, 20)


@dataclass
class Seeded:
    duplicates: set[int] = field(default_factory=set)
    dirty_affiliates: set[int] = field(default_factory=set)
    already_superseded: set[int] = field(default_factory=set)


def event(affiliate, change: tuple[int, int], at: datetime, **kwargs) -> int:
    return TierEventFactory(affiliate=affiliate, from_rate=change[0], to_rate=change[1], created_at=at, **kwargs).pk


def seed_incident() -> Seeded:
    """Deterministic: 47 duplicates over 23 affiliates, and rows that must survive untouched."""
    rng = random.Random(2347)
    copies = [1] * 23
    for _ in range(24):
        copies[rng.randrange(23)] += 1
    assert sum(copies) == 47
    seeded = Seeded()
    for index, count in enumerate(copies):
        affiliate = AffiliateFactory()
        seeded.dirty_affiliates.add(affiliate.pk)
        start = BASE + timedelta(hours=index)
        if index == 0:
            start = start.replace(second=59, microsecond=600_000)  # the copy lands in the next clock minute
        changes = [PROMOTE, DEMOTE, PROMOTE, DEMOTE]
        for run, size in enumerate(_split(count, 4)):  # at most 4 copies a run, each run a new change
            kept_at = start + timedelta(hours=run * 3)
            event(affiliate, changes[run], kept_at)  # the earliest: kept
            for copy in range(1, size + 1):
                seeded.duplicates.add(
                    event(affiliate, changes[run], kept_at + timedelta(seconds=copy * 0.8 + copy * 11))
                )
        # look-alikes that are not duplicates:
        event(affiliate, changes[0], start + timedelta(seconds=61))  # same change, but more than a minute later
        seeded.already_superseded.add(event(affiliate, changes[0], start + timedelta(seconds=2), status="superseded"))
    for index in range(5):  # clean affiliates: a quick legitimate flip, and the same instants as dirty ones
        clean = AffiliateFactory()
        at = BASE + timedelta(hours=index)
        event(clean, PROMOTE, at)
        event(clean, DEMOTE, at + timedelta(seconds=30))
        event(clean, PROMOTE, at + timedelta(days=2))
    return seeded


def _split(count: int, size: int) -> list[int]:
    return [min(size, count - start) for start in range(0, count, size)]


def statuses() -> dict[int, str]:
    return dict(TierEvent.objects.values_list("pk", "status"))


def run_command(*args: str) -> str:
    out = StringIO()
    call_command("dedupe_tier_events", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_marks_exactly_the_47_duplicates_of_23_affiliates_and_a_second_run_changes_nothing():
    seeded = seed_incident()
    before = statuses()
    total_rows = len(before)

    dry = run_command("--dry-run")
    assert statuses() == before and not AuditEntry.objects.exists()
    assert "47 duplicate tier event(s) would supersede across 23 affiliate(s). Dry run: nothing written." in dry

    first = run_command()

    after = statuses()
    newly = {pk for pk, status in after.items() if status == "superseded" and before[pk] == "active"}
    assert newly == seeded.duplicates and len(newly) == 47
    assert set(TierEvent.objects.filter(pk__in=newly).values_list("affiliate_id", flat=True)) == seeded.dirty_affiliates
    assert all(after[pk] == "superseded" for pk in seeded.already_superseded)
    assert len(after) == total_rows  # never deletes
    assert "47 duplicate tier event(s) superseded across 23 affiliate(s)." in first
    assert "duplicate runs" in first  # the progress bar
    audit = AuditEntry.objects.filter(content_type__model="tierevent")
    assert set(audit.values_list("object_id", flat=True)) == {str(pk) for pk in seeded.duplicates}
    assert set(audit.values_list("actor_label", "transition", "source", "target")) == {
        ("system:command:dedupe_tier_events", "supersede", "active", "superseded")
    }

    second = run_command()

    assert statuses() == after
    assert "0 duplicate tier event(s) superseded across 0 affiliate(s)." in second
    assert audit.count() == 47


@pytest.mark.django_db
def test_the_kept_event_is_the_earliest_and_the_reason_names_it():
    affiliate = AffiliateFactory()
    late = event(affiliate, PROMOTE, BASE + timedelta(seconds=40))
    kept = event(affiliate, PROMOTE, BASE)
    middle = event(affiliate, PROMOTE, BASE + timedelta(seconds=1))

    run_command()

    assert statuses() == {kept: "active", middle: "superseded", late: "superseded"}
    assert set(AuditEntry.objects.values_list("reason", flat=True)) == {f"duplicate of tier event #{kept}"}


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["0", "-5", "86400"])
def test_bad_window_is_a_command_error(value):
    with pytest.raises(CommandError, match="--window-seconds"):
        run_command("--window-seconds", value)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_supersede_each_duplicate_once():
    seeded = seed_incident()

    outcomes = race([run_command, run_command, run_command])

    assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
    superseded = {pk for pk, status in statuses().items() if status == "superseded"}
    assert superseded == seeded.duplicates | seeded.already_superseded
    audit = AuditEntry.objects.filter(content_type__model="tierevent")
    assert audit.count() == 47 and audit.values("object_id").distinct().count() == 47
