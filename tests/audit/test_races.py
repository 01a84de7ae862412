"""The primitives under real contention: PostgreSQL, one connection per thread, a barrier.

Each round releases 2-8 racers on one row at the same instant. Exactly one may win; every loser
must get Conflict naming the winner's state and actor; audit rows and on_commit callbacks must
exist for the winner only; the beacon counter must count every loser.
"""

import random
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import transaction

from audit.beacons import emit_beacon
from audit.models import AuditEntry, BeaconAlert, BeaconCount
from audit.services import raise_beacon_alerts
from audit.transitions import apply_transition
from bench.primitives.models import Ticket
from core.actors import SystemActor
from core.claims import claim
from core.errors import Conflict
from core.models import Claim
from core.transactions import atomic
from payouts.services.attempts import PAID_AFTER_FAILURE
from tests.concurrency import race

ROUNDS = 50
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _decide(ticket_id: int, transition: str, actor: SystemActor, callbacks: list[str]) -> str:
    with atomic():  # the caller's own transaction, as a service would open it
        ticket = Ticket.objects.get(pk=ticket_id)
        apply_transition(
            instance=ticket,
            transition=transition,
            actor=actor,
            on_commit=lambda: callbacks.append(f"{actor.name}:{transition}"),
        )
    return transition


def test_exactly_one_racer_wins_every_round():
    rng = random.Random(20261125)
    total_losers = 0
    for round_no in range(ROUNDS):
        ticket = Ticket.objects.create(title=f"round {round_no}")
        racers_count = rng.randint(2, 8)
        callbacks: list[str] = []
        actors = [SystemActor(f"racer-{i}") for i in range(racers_count)]
        moves = [rng.choice(["approve", "reject"]) for _ in actors]

        racers = [(lambda a=a, m=m: _decide(ticket.pk, m, a, callbacks)) for a, m in zip(actors, moves, strict=True)]
        outcomes = race(racers)

        winners = [o for o in outcomes if o.ok]
        losers = [o for o in outcomes if not o.ok]
        assert len(winners) == 1, f"round {round_no}: {len(winners)} winners"
        assert all(isinstance(o.error, Conflict) for o in losers), [repr(o.error) for o in losers]
        ticket.refresh_from_db()
        winner_actor = actors[winners[0].index]
        assert ticket.status == {"approve": "approved", "reject": "rejected"}[winners[0].result]
        for loser in losers:
            assert loser.error.details["current_status"] == ticket.status
            assert loser.error.details["current_actor"] == winner_actor.label
        entries = AuditEntry.objects.filter(object_id=str(ticket.pk))
        assert [(e.actor_label, e.target) for e in entries] == [(winner_actor.label, ticket.status)]
        assert callbacks == [f"{winner_actor.name}:{winners[0].result}"]
        total_losers += len(losers)

    assert AuditEntry.objects.count() == ROUNDS
    counted = sum(BeaconCount.objects.filter(kind="ticket_race_lost").values_list("count", flat=True))
    assert counted == total_losers


def test_exactly_one_claim_among_racers():
    rng = random.Random(7)
    for round_no in range(ROUNDS):
        key = f"race:{round_no}"
        outcomes = race([lambda: claim(key).won for _ in range(rng.randint(2, 8))])
        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
        assert sum(o.result for o in outcomes) == 1
    assert Claim.objects.count() == ROUNDS


def test_claim_inside_transactions_waits_for_the_first_holder_commit():
    # The second racer blocks on the unique index until the first commits, then loses.
    def claim_in_transaction() -> bool:
        with transaction.atomic():
            return claim("tx-claim").won

    for _ in range(10):
        Claim.objects.filter(key="tx-claim").delete()
        outcomes = race([claim_in_transaction for _ in range(6)])
        assert sum(o.result for o in outcomes) == 1


def test_two_alert_runs_at_once_mail_one_critical_beacon_once():
    """Two beat ticks (or two hosts' beats) run the alert job at the same instant, on their own
    connections: the alert row's UNIQUE (kind, hour) lets one of them claim it and mail."""
    rng = random.Random(14)
    start = datetime(2026, 11, 25, 0, 30, tzinfo=UTC)
    for round_no in range(ROUNDS):
        moment = start + timedelta(hours=round_no)  # one hour per round: each round's beacon is a first
        with time_machine.travel(moment):
            emit_beacon(PAID_AFTER_FAILURE, object_id=round_no)
        mail.outbox.clear()
        racers = rng.randint(2, 4)
        outcomes = race([lambda: raise_beacon_alerts(now=moment) for _ in range(racers)])

        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
        raised = [alert for o in outcomes for alert in o.result]
        assert [(a.kind, a.hour, a.count) for a in raised] == [(PAID_AFTER_FAILURE, moment.replace(minute=0), 1)]
        assert len(mail.outbox) == 1, f"round {round_no}: {len(mail.outbox)} mails from {racers} runs"
        assert f"payouts.Payout #{round_no}" in mail.outbox[0].subject
    assert BeaconAlert.objects.count() == ROUNDS
