"""Scenario 1: 200 payouts, each approved and rejected at once by two super-admins over HTTP.

Real processes: gunicorn with 4 workers, 2 Celery workers on Redis, the Wise stand-in. Every pair of
requests is released by a Barrier. Invariants, from our database AND from Wise's own record:
one winner per payout, the loser told 409 naming the winner; Wise transfers = approved payouts, each
funded once and none for a rejected payout; audit rows = won transitions; one race beacon per loser.
"""

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest
from django.db import close_old_connections

from payouts.keys import wise_transaction_id
from payouts.models import Payout, PayoutStatus
from tests.chaos.conftest import SUMMARY
from tests.chaos.helpers import audit_targets, beacons, ledger_ok, reviewer_tokens, wait_until
from tests.chaos.stack import ChaosStack
from tests.concurrency import race
from tests.factories.payouts import PayoutFactory, funded_affiliate

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
PAYOUTS = 200
PAYOUTS_LONG = 1000
PAIRS_AT_ONCE = 8  # 16 requests in flight against 4 gunicorn workers
WON = {"approve": PayoutStatus.APPROVED, "reject": PayoutStatus.REJECTED}


def _payouts(count: int) -> list[Payout]:
    affiliates = [funded_affiliate(Decimal("1000.00")) for _ in range(max(count // 10, 1))]
    return [PayoutFactory(affiliate=affiliates[i % len(affiliates)], amount=Decimal("10.00")) for i in range(count)]


def _review(client: httpx.Client, payout_id: int, move: str, style: str):
    def call() -> tuple[int, dict]:
        if style == "action":
            response = client.post(f"/api/payouts/{payout_id}/{move}/", json={"reason": f"chaos {move}"})
        else:
            body = {"status": WON[move], "expected_status": "requested", "reason": f"chaos {move}"}
            response = client.put(f"/api/payouts/{payout_id}/", json=body)
        return response.status_code, response.json()

    return call


def test_payout_review_race_over_http(stack: ChaosStack, chaos_long: bool) -> None:
    # given: 200 requested payouts and two super-admins, each with an API token
    tokens = reviewer_tokens("kerem", "ana")
    payouts = _payouts(PAYOUTS_LONG if chaos_long else PAYOUTS)
    rng = random.Random(9)
    plan = {}
    for payout in payouts:
        approver = rng.choice(list(tokens))
        plan[payout.pk] = (approver, next(name for name in tokens if name != approver), rng.choice(["action", "put"]))
    clients = {name: stack.api(token) for name, token in tokens.items()}
    close_old_connections()

    # when: for each payout, one approves while the other rejects, released together
    def one_round(payout_id: int) -> tuple[int, list]:
        approver, rejecter, style = plan[payout_id]
        racers = [
            _review(clients[approver], payout_id, "approve", style),
            _review(clients[rejecter], payout_id, "reject", style),
        ]
        order = rng.sample([0, 1], 2)  # who enters the barrier first changes nothing, but vary it
        outcomes = race([racers[i] for i in order])
        return payout_id, [(("approve", "reject")[i], outcomes[k]) for k, i in enumerate(order)]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=PAIRS_AT_ONCE) as pool:
        rounds = dict(pool.map(one_round, plan))
    race_seconds = time.monotonic() - started

    # then: exactly one winner per payout, the other told 409 with the winner's name
    double, none, errors, moved_on = [], [], [], []
    winners: dict[int, str] = {}
    for payout_id, outcomes in rounds.items():
        for _move, outcome in outcomes:
            if not outcome.ok:
                errors.append((payout_id, repr(outcome.error)))
        won = [(move, outcome.result[1]) for move, outcome in outcomes if outcome.ok and outcome.result[0] == 200]
        lost = [(move, outcome.result) for move, outcome in outcomes if outcome.ok and outcome.result[0] != 200]
        if len(won) > 1:
            double.append(payout_id)
        elif not won:
            none.append((payout_id, lost))
        else:
            winners[payout_id] = won[0][0]
            winner_name = plan[payout_id][0] if won[0][0] == "approve" else plan[payout_id][1]
            ((status, body),) = [result for _move, result in lost]
            assert status == 409 and body["error"] == "conflict", (payout_id, status, body)
            assert body["current_reviewer"] == winner_name, body  # the person, even after the dispatch moved on
            if body["current_status"] != WON[won[0][0]]:
                moved_on.append(payout_id)
            assert body["current_status"] in (WON[won[0][0]], PayoutStatus.PROCESSING, PayoutStatus.PAID), body
    assert not errors, errors[:5]
    assert not double, f"double winners: {double[:10]}"
    assert not none, f"payouts without a winner: {none[:5]}"
    approved = {pid for pid, move in winners.items() if move == "approve"}
    rejected = set(winners) - approved

    # the approvals' dispatches run on the Celery workers: wait until every one is funded at Wise
    wise = stack.standins["wise"]
    dispatch_seconds = wait_until(
        lambda: Payout.objects.filter(pk__in=approved, wise_funded_at__isnull=False).count() == len(approved),
        timeout=300 + 3 * len(approved),  # generous, and grows with the dispatches to drain
        what="every approved payout funded",
        stack=stack,
    )
    # Wise pays them out: each transfer reaches outgoing_payment_sent and Wise sends its webhook
    transfers = wise.state()["transfers"]
    for transfer in transfers:
        assert wise.post(f"/__wise__/transfers/{transfer['id']}/state", {"status": "outgoing_payment_sent"}).is_success
    wait_until(
        lambda: Payout.objects.filter(pk__in=approved, status=PayoutStatus.PAID).count() == len(approved),
        timeout=300 + 3 * len(approved),
        what="every approved payout paid after Wise's webhooks",
        stack=stack,
    )

    # our database
    statuses = dict(Payout.objects.values_list("pk", "status"))
    assert {statuses[pid] for pid in approved} <= {PayoutStatus.PAID}
    assert {statuses[pid] for pid in rejected} <= {PayoutStatus.REJECTED}
    reviewers = dict(Payout.objects.values_list("pk", "reviewed_by__username"))
    for payout_id, move in winners.items():
        expected = plan[payout_id][0] if move == "approve" else plan[payout_id][1]
        assert reviewers[payout_id] == expected, (payout_id, reviewers[payout_id], expected)

    # Wise's own record: one transfer per approved payout and none other, each funded exactly once
    state = wise.state()
    by_customer_id = Counter(t["customerTransactionId"] for t in state["transfers"])
    expected_ids = {wise_transaction_id(payout_id=pid, attempt=1): pid for pid in approved}
    spurious = [cid for cid in by_customer_id if cid not in expected_ids]
    assert not spurious, f"transfers for payouts that were not approved: {spurious[:5]}"
    assert set(by_customer_id) == set(expected_ids)
    assert max(by_customer_id.values()) == 1
    fundings = Counter(f["transferId"] for f in state["fundings"])
    assert set(fundings) == {t["id"] for t in state["transfers"]} and max(fundings.values()) == 1
    fund_requests = wise.requests("POST", r"/transfers/\d+/payments$")
    assert len(fund_requests) == len(approved), "a funding was requested more than once"
    recorded = dict(Payout.objects.filter(pk__in=approved).values_list("pk", "wise_transfer_id"))
    assert {str(t["id"]) for t in state["transfers"]} == set(recorded.values())

    # audit rows = won transitions; one race beacon per loser
    audit = audit_targets("payouts.payout")
    assert audit == {
        "approved": len(approved),
        "rejected": len(rejected),
        "processing": len(approved),
        "paid": len(approved),
    }, audit
    assert beacons("payout_race_lost") == len(winners)

    books = ledger_ok()
    SUMMARY.add(
        f"payout-race: {len(plan)} payouts over HTTP (gunicorn x4, 2 Celery workers), {len(double)} double winners, "
        f"{len(none)} without a winner, {len(spurious)} spurious transfers; {len(approved)} approved -> "
        f"{len(state['transfers'])} Wise transfers, {sum(fundings.values())} fundings (each once), "
        f"{len(approved)} paid by webhook; {len(rejected)} rejected; {sum(audit.values())} audit rows = won "
        f"transitions; {len(winners)} losers told 409 naming the winning reviewer ({len(moved_on)} after the "
        f"dispatch had moved the payout on); race {race_seconds:.1f} s, "
        f"dispatch drained {dispatch_seconds:.1f} s later; {books}",
        key=1,
    )


def test_conflict_names_the_reviewer_not_the_dispatcher(stack: ChaosStack) -> None:
    """The race of scenario 1 when the loser's request lands after the dispatch: deterministic here."""
    # given: kerem approved a payout and the worker has dispatched it (approved -> processing)
    tokens = reviewer_tokens("kerem", "ana")
    (payout,) = _payouts(1)
    close_old_connections()
    with stack.api(tokens["kerem"]) as kerem:
        assert kerem.post(f"/api/payouts/{payout.pk}/approve/", json={}).status_code == 200
    wait_until(
        lambda: Payout.objects.filter(pk=payout.pk, status=PayoutStatus.PROCESSING).exists(),
        timeout=300,
        what="the dispatch",
        stack=stack,
    )

    # when: ana's reject of the payout she saw requested arrives now
    with stack.api(tokens["ana"]) as ana:
        response = ana.post(f"/api/payouts/{payout.pk}/reject/", json={"reason": "late"})

    # then: 409, and it names the reviewer who decided it
    body = response.json()
    assert response.status_code == 409 and body["error"] == "conflict", body
    assert body["current_reviewer"] == "kerem", body
    ledger_ok()
