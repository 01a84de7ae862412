"""The seed incident, replayed many times: reviewers released together on one payout.

PostgreSQL, one connection per thread (tests.concurrency.race), a Barrier. Every round asserts
every invariant: exactly one winner, every loser told (409) who won, a Wise transfer iff approve
won and exactly one (funded once), one audit row per won transition, a beacon per lost race.
"""

import random
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.test import Client

from audit.models import AuditEntry, BeaconCount
from core.errors import Conflict
from payouts.keys import wise_transaction_id
from payouts.models import Payout, PayoutApproval
from payouts.selectors import available_balance
from payouts.services import approve_payout, reject_payout, request_payout
from tests.concurrency import race
from tests.factories.accounts import SuperAdminFactory
from tests.factories.affiliates import AffiliateFactory
from tests.factories.payouts import PayoutFactory, funded_affiliate
from tests.payouts.helpers import api_json

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROUNDS = 60  # per HTTP race test; 2 racers each (the 20-minute CI budget on 2 cores)
MANY_REVIEWER_ROUNDS = 30  # 4-8 racers each: ~190 requests, kept short for the 2-core CI box
WON = {"approve": "approved", "reject": "rejected"}


@pytest.fixture
def reviewers() -> list:
    return [SuperAdminFactory(username=name) for name in ("kerem", "ana", "ines", "jon", "lea", "max", "noa", "oli")]


@pytest.fixture
def affiliate():
    return AffiliateFactory()


def _logged_in(users) -> list[Client]:
    clients = []
    for user in users:
        client = Client()  # one per racer: a Client is not thread-safe
        client.force_login(user)
        clients.append(client)
    return clients


def _api_action(client: Client, payout_id: int, move: str) -> Callable[[], tuple[int, dict]]:
    def call() -> tuple[int, dict]:
        response = client.post(f"/api/payouts/{payout_id}/{move}/", {"reason": move}, "application/json")
        return response.status_code, api_json(response)

    return call


def _api_put(client: Client, payout_id: int, move: str) -> Callable[[], tuple[int, dict]]:
    def call() -> tuple[int, dict]:
        body = {"status": WON[move], "expected_status": "requested", "reason": move}
        response = client.put(f"/api/payouts/{payout_id}/", body, "application/json")
        return response.status_code, api_json(response)

    return call


def _assert_round(wise, payout: Payout, winner_move: str, winner_name: str, losers: int) -> None:
    payout.refresh_from_db()
    transfers = wise.transfers_for(wise_transaction_id(payout_id=payout.pk, attempt=1))
    funded = [f for f in wise.fundings if transfers and f["transferId"] == transfers[0]["id"]]
    audit = list(
        AuditEntry.objects.filter(object_id=str(payout.pk)).order_by("id").values_list("target", "actor_label")
    )
    if winner_move == "approve":
        assert payout.status == "processing" and payout.reviewed_by.username == winner_name
        assert len(transfers) == 1 and len(funded) == 1
        assert audit == [("approved", winner_name), ("processing", "system:task:dispatch_wise_transfer")]
    else:
        assert payout.status == "rejected" and payout.reviewed_by.username == winner_name
        assert transfers == []
        assert audit == [("rejected", winner_name)]
    assert losers >= 1


def _race_lost_beacons() -> int:
    return sum(BeaconCount.objects.filter(kind="payout_race_lost").values_list("count", flat=True))


def _http_rounds(wise, reviewers, affiliate, *, rounds: int, make_call, sizes: tuple[int, int], seed: int) -> dict:
    rng = random.Random(seed)
    wins = {"approve": 0, "reject": 0}
    total_losers = 0
    for round_no in range(rounds):
        payout = PayoutFactory(affiliate=affiliate)
        racers = rng.sample(reviewers, rng.randint(*sizes))
        moves = ["approve", "reject"] + [rng.choice(["approve", "reject"]) for _ in racers[2:]]
        rng.shuffle(moves)
        clients = _logged_in(racers)

        outcomes = race([make_call(c, payout.pk, m) for c, m in zip(clients, moves, strict=True)])

        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
        codes = sorted(o.result[0] for o in outcomes)
        assert codes == [200] + [409] * (len(racers) - 1), (round_no, codes, [o.result[1] for o in outcomes])
        winner = next(o for o in outcomes if o.result[0] == 200)
        winner_move, winner_name = moves[winner.index], racers[winner.index].username
        for loser in (o for o in outcomes if o.result[0] == 409):
            body = loser.result[1]
            assert body["error"] == "conflict"
            assert body["current_reviewer"] == winner_name  # the person, even once the dispatch moved it on
            assert body["current_status"] in {WON[winner_move], "processing"}
            assert body["reviewed_at"]
        _assert_round(wise, payout, winner_move, winner_name, len(racers) - 1)
        wins[winner_move] += 1
        total_losers += len(racers) - 1
    assert len(wise.transfers) == len(wise.fundings) == wins["approve"]
    assert _race_lost_beacons() == total_losers
    print(f"\n{rounds} rounds, {total_losers} losers (409), wins {wins}, transfers {len(wise.transfers)}")
    return wins


def test_approve_vs_reject_via_the_api(wise, reviewers, affiliate):
    wins = _http_rounds(wise, reviewers, affiliate, rounds=ROUNDS, make_call=_api_action, sizes=(2, 2), seed=47828)
    assert sum(wins.values()) == ROUNDS and min(wins.values()) > 0, wins  # both sides do win sometimes


def test_approve_vs_reject_via_put_with_expected_status(wise, reviewers, affiliate):
    wins = _http_rounds(wise, reviewers, affiliate, rounds=ROUNDS, make_call=_api_put, sizes=(2, 2), seed=310)
    assert sum(wins.values()) == ROUNDS and min(wins.values()) > 0, wins


def test_four_to_eight_reviewers_mixing_actions_and_put(wise, reviewers, affiliate):
    rng = random.Random(9)

    def either(client: Client, payout_id: int, move: str):
        return (_api_action if rng.random() < 0.5 else _api_put)(client, payout_id, move)

    wins = _http_rounds(
        wise, reviewers, affiliate, rounds=MANY_REVIEWER_ROUNDS, make_call=either, sizes=(4, 8), seed=2026
    )
    assert sum(wins.values()) == MANY_REVIEWER_ROUNDS


def test_approve_vs_reject_via_the_service_layer(wise, reviewers, affiliate):
    kerem, ana = reviewers[:2]
    wins = {"approve": 0, "reject": 0}
    for round_no in range(ROUNDS):
        payout = PayoutFactory(affiliate=affiliate)
        moves = [("approve", kerem), ("reject", ana)] if round_no % 2 else [("reject", kerem), ("approve", ana)]
        services = {"approve": approve_payout, "reject": reject_payout}

        outcomes = race([lambda m=m, u=u: services[m](payout_id=payout.pk, actor=u, reason=m) for m, u in moves])

        winners = [o for o in outcomes if o.ok]
        losers = [o for o in outcomes if not o.ok]
        assert len(winners) == 1 and len(losers) == 1, [repr(o.error) for o in outcomes]
        assert isinstance(losers[0].error, Conflict)
        move, user = moves[winners[0].index]
        assert losers[0].error.details["current_reviewer"] == user.username
        _assert_round(wise, payout, move, user.username, 1)
        wins[move] += 1
    assert min(wins.values()) > 0, wins
    assert len(wise.transfers) == len(wise.fundings) == wins["approve"]
    assert _race_lost_beacons() == ROUNDS
    print(f"\n{ROUNDS} service rounds, wins {wins}, transfers {len(wise.transfers)}")


def test_concurrent_requests_never_overdraw_the_balance():
    rng = random.Random(5)
    for round_no in range(30):
        affiliate = funded_affiliate(Decimal("100.00"))
        racers = rng.randint(2, 6)
        amount = Decimal("40.00")  # at most two fit in 100.00

        outcomes = race(
            [
                lambda: request_payout(affiliate=affiliate, amount=amount, currency="EUR", actor=affiliate.user)
                for _ in range(racers)
            ]
        )

        won = [o for o in outcomes if o.ok]
        refused = [o for o in outcomes if not o.ok]
        assert len(won) == min(2, racers), (round_no, [repr(o.error) for o in outcomes])
        assert all(getattr(o.error, "code", None) == "insufficient_balance" for o in refused)
        assert Payout.objects.filter(affiliate=affiliate).count() == len(won)
        assert available_balance(affiliate=affiliate, currency="EUR") == Decimal("100.00") - amount * len(won) >= 0


# --- dual approval --------------------------------------------------------------------------------

DUAL_ROUNDS = 50
FIRST_APPROVER_ROUNDS = 20  # two first approvals at once: one first, one second (not a Done-when race)
LARGE = Decimal("1500.00")  # above the 1000.00 EUR threshold the dual-approval tests set


def _approvers(payout: Payout) -> list[str]:
    rows = PayoutApproval.objects.filter(payout=payout).order_by("id")
    return list(rows.values_list("approver__username", flat=True))


def test_two_second_approvers_at_once_one_wins_the_other_is_told_who(wise, reviewers, affiliate, settings):
    """Above the threshold kerem approves first; ana and ines then approve at once. Each round:
    exactly one moves the payout (one audit row for the won transition, one Wise transfer funded
    once), the other gets 409 naming the winner and records no approval."""
    settings.PAYOUT_DUAL_APPROVAL_THRESHOLD = "EUR=1000.00"
    kerem, ana, ines = reviewers[:3]
    (first,) = _logged_in([kerem])
    wins: Counter = Counter()
    for round_no in range(DUAL_ROUNDS):
        payout = PayoutFactory(affiliate=affiliate, amount=LARGE)
        assert _api_action(first, payout.pk, "approve")()[0] == 202  # 1 of 2
        racers = [ana, ines] if round_no % 2 else [ines, ana]

        outcomes = race([_api_action(client, payout.pk, "approve") for client in _logged_in(racers)])

        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
        assert sorted(o.result[0] for o in outcomes) == [200, 409], (round_no, [o.result for o in outcomes])
        winner = racers[next(o.index for o in outcomes if o.result[0] == 200)].username
        body = next(o.result[1] for o in outcomes if o.result[0] == 409)
        assert (body["error"], body["current_reviewer"]) == ("conflict", winner), body
        assert body["current_status"] in {"approved", "processing"}
        _assert_round(wise, payout, "approve", winner, losers=1)  # one audit row per transition, one transfer
        assert _approvers(payout) == ["kerem", winner]  # the loser recorded nothing
        wins[winner] += 1
    assert len(wise.transfers) == len(wise.fundings) == DUAL_ROUNDS
    assert _race_lost_beacons() == DUAL_ROUNDS
    print(f"\n{DUAL_ROUNDS} second-approver rounds, wins {dict(wins)}, transfers {len(wise.transfers)}")


def test_two_first_approvers_at_once_make_one_approval_not_two_firsts(wise, reviewers, affiliate, settings):
    """Nobody has approved yet and kerem and ana approve at once: their approvals queue on the
    payout's row, so one is the first (202) and the other the second (200, the transition); never
    two "first" approvals that leave the payout requested with two approvals."""
    settings.PAYOUT_DUAL_APPROVAL_THRESHOLD = "EUR=1000.00"
    kerem, ana = reviewers[:2]
    for round_no in range(FIRST_APPROVER_ROUNDS):
        payout = PayoutFactory(affiliate=affiliate, amount=LARGE)
        racers = [kerem, ana] if round_no % 2 else [ana, kerem]

        outcomes = race([_api_action(client, payout.pk, "approve") for client in _logged_in(racers)])

        assert sorted(o.result[0] for o in outcomes) == [200, 202], (round_no, [o.result for o in outcomes])
        second = racers[next(o.index for o in outcomes if o.result[0] == 200)].username
        first = racers[next(o.index for o in outcomes if o.result[0] == 202)].username
        _assert_round(wise, payout, "approve", second, losers=1)
        assert _approvers(payout) == [first, second]
    assert len(wise.transfers) == len(wise.fundings) == FIRST_APPROVER_ROUNDS
