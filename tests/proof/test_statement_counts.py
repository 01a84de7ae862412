"""The SQL each hot operation sends, pinned statement by statement: a regression (an N+1, a lost
select_related, an extra read in the race path) fails CI with the full list in the message.

Transactional tests, so BEGIN/COMMIT/ROLLBACK are real (a TestCase would turn them into savepoints).
The builders in bench/proof/operations.py create the data; bench/statements.py prints the same lists.
"""

from dataclasses import dataclass

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import BeaconCount
from audit.transitions import apply_transition
from bench.primitives.models import Ticket
from bench.proof import operations
from bench.proof.statements import capture, kind_of
from core.actors import SystemActor
from core.errors import Conflict
from core.transactions import atomic
from tests.concurrency import race
from tests.proof.conftest import summary_line

pytestmark = pytest.mark.django_db(transaction=True)

BEACON_UPSERT = "INSERT audit_beaconcount ON CONFLICT"
EXPECTED: dict[str, list[str]] = {
    "approve": [
        "BEGIN",
        "SELECT payouts_payout",  # the payout with its affiliate (KYC condition): one join
        "UPDATE payouts_payout",  # the guarded UPDATE, reviewer columns included
        "INSERT audit_auditentry",
        "SELECT ledger_account FOR UPDATE",  # the books' re-check: the payable is not below zero
        "COMMIT",
    ],
    "reject_with_conflict": [
        "BEGIN",
        "SELECT payouts_payout",
        "UPDATE payouts_payout",  # matches 0 rows: the race is lost here
        "SELECT audit_auditentry",  # the 409 names the last person who decided (not a later job)...
        "SELECT payouts_payout",  # ... and the state now: the conflict's details, read because rendered
        "ROLLBACK",
        BEACON_UPSERT,  # after the rollback, so the count survives it
    ],
    "lost_race_unrendered": [
        "BEGIN",
        "UPDATE payouts_payout",  # the whole race: one statement
        "COMMIT",
        BEACON_UPSERT,
    ],
    "evaluate_tier": [
        "BEGIN",
        "SELECT affiliates_affiliate",  # rate, version and the 90-day sum in one statement
        "SELECT affiliates_tier",
        "UPDATE affiliates_affiliate",  # conditional on the rate and version read
        "INSERT affiliates_tierevent",
        "INSERT audit_auditentry",
        "COMMIT",
    ],
    "pos_push": [
        "BEGIN",  # take: lock a batch, claim each job, set the batch aside for one lease
        "SELECT pos_sync_syncjob FOR UPDATE SKIP LOCKED",  # with each order's first attempt
        "INSERT audit_claim ON CONFLICT",
        "UPDATE pos_sync_syncjob",
        "UPDATE pos_sync_syncjob",
        "COMMIT",  # then Square over HTTP, outside any transaction
        "UPDATE audit_claim",  # the heartbeat right before CreateOrder: renewed, so the job is still ours
        "BEGIN",  # record: the success and the claim's completion commit together
        "UPDATE pos_sync_syncjob",
        "INSERT audit_auditentry",
        "UPDATE audit_claim",
        "COMMIT",
    ],
    "loyalty_grant": [
        "SELECT loyalty_loyaltydiscount",  # pending rows a crashed tick left (none)
        "SELECT loyalty_subscription",  # a keyset batch of Pro subscribers past a year
        "SELECT loyalty_loyaltydiscount",  # pre-flight: anniversaries already granted, by user...
        "SELECT loyalty_loyaltydiscount",  # ... and by subscription
        "BEGIN",
        "SELECT loyalty_subscription FOR NO KEY UPDATE",  # still active Pro, held against a cancel
        "INSERT loyalty_loyaltydiscount",  # the pending row: the partial UNIQUE decides who grants
        "COMMIT",
        "SELECT loyalty_loyaltydiscount",
        "UPDATE loyalty_loyaltydiscount",  # the attempt guard, then Stripe over HTTP
        "BEGIN",
        "UPDATE loyalty_loyaltydiscount",  # guarded pending -> applied
        "INSERT audit_auditentry",
        "COMMIT",
        "SELECT loyalty_subscription",  # the next keyset batch: empty
        "SELECT loyalty_loyaltydiscount",  # sweep: codes of revoked rows still open
        "SELECT loyalty_loyaltydiscount",  # sweep: applied rows whose email was not sent
    ],
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_statements_per_operation(name, square, stripe):
    operation = operations.BUILDERS[name]()

    with operations.tasks_queued_not_run():
        captured = capture(operation.run, expect=operation.expect)

    listing = "\n".join(f"  {kind:45} {sql[:110]}" for kind, sql in zip(captured.kinds, captured.sql, strict=True))
    assert captured.kinds == EXPECTED[name], f"{operation.name} sent:\n{listing}"
    summary_line(f"statements: {operation.name}: {captured.describe()}: {', '.join(captured.kinds)}")


def test_a_lost_race_under_real_contention_costs_one_statement_in_its_transaction():
    """Two racers on one row, 30 rounds: the loser waits on the winner's row lock, re-checks, matches
    nothing. Inside its transaction it sent the guarded UPDATE and nothing else; after it, the
    beacon counter upsert. Its Conflict still names the winner when asked."""
    rounds = 30
    actors = [SystemActor("racer-a"), SystemActor("racer-b")]
    for _ in range(rounds):
        ticket = Ticket.objects.create()
        outcomes = race([lambda actor=actor: _decide_and_record(ticket.pk, actor) for actor in actors])
        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
        winners = [o.result for o in outcomes if o.result.conflict is None]
        losers = [o.result for o in outcomes if o.result.conflict is not None]
        assert len(winners) == 1 and len(losers) == 1, "exactly one winner per round"
        assert losers[0].kinds == ["BEGIN", "UPDATE primitives_ticket", "ROLLBACK", BEACON_UPSERT], losers[0].kinds
        details = losers[0].conflict.details  # read now, after the race: one SELECT, outside it
        assert (details["current_status"], details["current_actor"]) == ("approved", winners[0].actor)
    assert sum(BeaconCount.objects.filter(kind="ticket_race_lost").values_list("count", flat=True)) == rounds
    summary_line(
        f"statements: lost race under contention: {rounds} rounds, every loser sent 1 statement in its "
        "transaction (the guarded UPDATE) + 1 beacon counter upsert after it; details read only on demand"
    )


@dataclass
class Decided:
    actor: str
    kinds: list[str]
    conflict: Conflict | None


def _decide_and_record(ticket_id: int, actor: SystemActor) -> Decided:
    ticket = Ticket.objects.get(pk=ticket_id)
    with CaptureQueriesContext(connection) as queries:
        try:
            with atomic():
                apply_transition(instance=ticket, transition="approve", actor=actor)
        except Conflict as exc:
            return Decided(actor.label, [kind_of(q["sql"]) for q in queries.captured_queries], exc)
    return Decided(actor.label, [kind_of(q["sql"]) for q in queries.captured_queries], None)
