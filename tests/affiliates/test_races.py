"""Affiliates under real contention: PostgreSQL, one connection per thread, a barrier, many rounds.

The seed incident was two legitimate invoice.paid events one second apart, each evaluating the
tier from Bronze and each writing "Promoted to Gold". Every test here asserts every invariant of
every round: HTTP answers, commissions, TierEvents, audit rows, rate, race-lost beacons.
"""

import random
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from affiliates import services
from affiliates.models import Affiliate, Commission, CommissionStatus, TierEvent
from affiliates.selectors import tier_for_total, tiers
from affiliates.services import EvaluationOutcome
from audit.models import AuditEntry, BeaconCount
from core.actors import SystemActor
from ledger.checks import check_balances
from ledger.models import Transfer, TransferKind
from tests.affiliates.events import charge_refunded, invoice_paid, invoice_voided
from tests.concurrency import race, wait_for_a_lock_waiter
from tests.factories.affiliates import AffiliateFactory, CommissionFactory, ReferralFactory
from tests.stripe_signing import post_stripe_event
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)
SYSTEM = SystemActor("test")


def race_lost_beacons() -> int:
    return BeaconCount.objects.filter(kind="evaluate_tier_race_lost").aggregate(n=Sum("count", default=0))["n"]


def rate_audit(affiliate_id: int) -> list[tuple[str, str, str]]:
    entries = AuditEntry.objects.filter(content_type__model="affiliate", object_id=str(affiliate_id)).order_by("id")
    return list(entries.values_list("transition", "source", "target"))


def deliver(event: dict):
    return post_stripe_event(Client(), event)  # a Client per racer: Client is not thread-safe


def test_two_invoices_crossing_gold_delivered_concurrently_promote_exactly_once(capsys):
    rounds, beacons_seen = 50, 0
    for round_no in range(rounds):
        referral = ReferralFactory(affiliate__commission_rate=20)
        customer, affiliate_id = referral.stripe_customer_id, referral.affiliate_id
        events = [
            invoice_paid(f"evt_{round_no}_{i}", invoice_id=f"in_{round_no}_{i}", customer=customer) for i in (1, 2)
        ]
        before = race_lost_beacons()

        outcomes = race([lambda e=e: deliver(e) for e in events])

        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
        assert [(o.result.status_code, o.result.json()["outcome"]) for o in outcomes] == [(200, "processed")] * 2
        commissions = Commission.objects.filter(affiliate_id=affiliate_id)
        assert sorted(commissions.values_list("amount", "rate")) == [(Decimal("800.00"), 20)] * 2, round_no
        assert Affiliate.objects.get(pk=affiliate_id).commission_rate == 25, round_no
        assert list(TierEvent.objects.filter(affiliate_id=affiliate_id).values_list("from_rate", "to_rate")) == [
            (20, 25)
        ], round_no
        assert rate_audit(affiliate_id) == [("promote", "20", "25")], round_no
        lost = race_lost_beacons() - before
        assert lost in (0, 1), round_no
        beacons_seen += lost
    assert WebhookEvent.objects.count() == 2 * rounds
    with capsys.disabled():
        print(f"\n[figures] {rounds} rounds x 2 invoice.paid: 1 TierEvent each, race-lost beacons={beacons_seen}")


def test_the_same_event_delivered_five_times_concurrently_records_one_commission(capsys):
    rounds = 20
    for round_no in range(rounds):
        referral = ReferralFactory()
        event = invoice_paid(
            f"evt_dup_{round_no}", invoice_id=f"in_dup_{round_no}", customer=referral.stripe_customer_id
        )

        outcomes = race([lambda: deliver(event) for _ in range(5)])

        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
        answers = sorted((o.result.status_code, o.result.json()["outcome"]) for o in outcomes)
        assert answers == [(200, "duplicate")] * 4 + [(200, "processed")], round_no
        assert Commission.objects.filter(stripe_invoice_id=f"in_dup_{round_no}").count() == 1
        assert WebhookEvent.objects.filter(event_id=event["id"]).count() == 1
        assert Affiliate.objects.get(pk=referral.affiliate_id).commission_version == 1
    assert Commission.objects.count() == rounds
    with capsys.disabled():
        print(f"\n[figures] {rounds} rounds x 5 deliveries of one event: {Commission.objects.count()} commissions")


def test_eight_concurrent_evaluations_make_one_tier_event(capsys):
    rounds, total_lost, total_unchanged = 30, 0, 0
    for round_no in range(rounds):
        affiliate = AffiliateFactory(commission_rate=20)
        CommissionFactory.create_batch(2, affiliate=affiliate, amount=Decimal("800.00"))
        actors = [SystemActor(f"racer-{i}") for i in range(8)]
        before = race_lost_beacons()

        outcomes = race(
            [lambda a=a: services.evaluate_tier(affiliate_id=affiliate.pk, actor=a, cause="race") for a in actors]
        )

        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
        by_outcome = [o.result.outcome for o in outcomes]
        assert by_outcome.count(EvaluationOutcome.CHANGED) == 1, (round_no, by_outcome)
        winner = next(o for o in outcomes if o.result.outcome == EvaluationOutcome.CHANGED)
        assert TierEvent.objects.filter(affiliate=affiliate).count() == 1
        assert rate_audit(affiliate.pk) == [("promote", "20", "25")]
        entry = AuditEntry.objects.get(content_type__model="affiliate", object_id=str(affiliate.pk))
        assert entry.actor_label == actors[winner.index].label
        lost = by_outcome.count(EvaluationOutcome.RACE_LOST)
        assert race_lost_beacons() - before == lost  # every loser counted, nobody else
        assert Affiliate.objects.get(pk=affiliate.pk).commission_rate == 25
        total_lost += lost
        total_unchanged += by_outcome.count(EvaluationOutcome.UNCHANGED)
    assert TierEvent.objects.count() == rounds
    with capsys.disabled():
        print(
            f"\n[figures] {rounds} rounds x 8 evaluations: {rounds} TierEvents, "
            f"race_lost={total_lost}, unchanged (read after the winner's commit)={total_unchanged}"
        )


def test_an_evaluation_whose_sum_changed_before_its_write_loses_and_the_rate_stays_right():
    # Interleaving forced step by step: the refund holds the affiliate row (version bumped, not yet
    # committed); the evaluation read the old sum (1600 -> Gold) and blocks on its UPDATE; the refund
    # commits (sum 800). The evaluation's WHERE commission_version = <read> matches nothing: no
    # stale promotion over the newer sum. (Guarding on the rate alone would write 25 here.)
    affiliate = AffiliateFactory(commission_rate=20)
    _keep, refund = CommissionFactory.create_batch(2, affiliate=affiliate, amount=Decimal("800.00"))
    holding, release = threading.Event(), threading.Event()

    def refund_and_hold() -> None:
        with transaction.atomic():
            services.reverse_commission(commission_id=refund.pk, actor=SYSTEM, reason="refund")
            holding.set()
            assert release.wait(180)  # set once the evaluation is blocked (lock-wait bound: 120 s)

    def evaluate_from_the_old_sum():
        assert holding.wait(180)
        return services.evaluate_tier(affiliate_id=affiliate.pk, actor=SystemActor("stale"))

    def referee() -> None:
        assert holding.wait(180)
        wait_for_a_lock_waiter()  # the evaluation is blocked on the affiliate row
        release.set()

    outcomes = race([refund_and_hold, evaluate_from_the_old_sum, referee])

    assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
    stale = outcomes[1].result
    assert (stale.outcome, stale.window_total, stale.to_rate) == (EvaluationOutcome.RACE_LOST, Decimal("1600.00"), 25)
    assert Affiliate.objects.get().commission_rate == 20
    assert not TierEvent.objects.exists() and rate_audit(affiliate.pk) == []
    assert race_lost_beacons() == 1


def test_refund_delivered_concurrently_with_a_void_and_replays_demotes_with_one_event():
    rounds = 20
    for round_no in range(rounds):
        referral = ReferralFactory(affiliate__commission_rate=20)
        customer, affiliate_id = referral.stripe_customer_id, referral.affiliate_id
        for i in (1, 2):
            deliver(invoice_paid(f"evt_{round_no}_{i}", invoice_id=f"in_{round_no}_{i}", customer=customer))
        assert Affiliate.objects.get(pk=affiliate_id).commission_rate == 25
        refund = charge_refunded(f"evt_{round_no}_refund", invoice_id=f"in_{round_no}_2")
        void = invoice_voided(f"evt_{round_no}_void", invoice_id=f"in_{round_no}_2", customer=customer)

        outcomes = race([lambda: deliver(refund), lambda: deliver(refund), lambda: deliver(void)])

        assert all(o.ok and o.result.status_code == 200 for o in outcomes), [o.error or o.result for o in outcomes]
        ids = [str(pk) for pk in Commission.objects.filter(affiliate_id=affiliate_id).values_list("pk", flat=True)]
        reversals = AuditEntry.objects.filter(content_type__model="commission", target="reversed", object_id__in=ids)
        assert reversals.count() == 1, round_no
        assert Affiliate.objects.get(pk=affiliate_id).commission_rate == 20
        events = TierEvent.objects.filter(affiliate_id=affiliate_id).order_by("id")
        assert list(events.values_list("from_rate", "to_rate")) == [(20, 25), (25, 20)], round_no
        assert rate_audit(affiliate_id) == [("promote", "20", "25"), ("demote", "25", "20")]


@pytest.mark.slow
def test_a_storm_of_payments_and_refunds_ends_at_the_rate_its_sum_earns_with_one_event_per_change(capsys):
    rng = random.Random(20261125)
    rounds, total_events = 25, 0
    for round_no in range(rounds):
        referral = ReferralFactory(affiliate__commission_rate=20)
        customer, affiliate_id = referral.stripe_customer_id, referral.affiliate_id
        paid_before = [f"in_{round_no}_old_{i}" for i in range(rng.randint(0, 3))]
        for invoice in paid_before:
            deliver(
                invoice_paid(
                    f"evt_{invoice}", invoice_id=invoice, customer=customer, amount_paid=rng.choice([300_000, 500_000])
                )
            )
        deliveries = []
        for i in range(rng.randint(3, 6)):
            if paid_before and rng.random() < 0.4:
                deliveries.append(charge_refunded(f"evt_{round_no}_refund_{i}", invoice_id=rng.choice(paid_before)))
            else:
                amount = rng.choice([200_000, 400_000, 700_000])
                deliveries.append(
                    invoice_paid(
                        f"evt_{round_no}_{i}", invoice_id=f"in_{round_no}_{i}", customer=customer, amount_paid=amount
                    )
                )

        outcomes = race([lambda e=e: deliver(e) for e in deliveries])

        assert all(o.ok and o.result.status_code == 200 for o in outcomes), [o.error or o.result for o in outcomes]
        total = (
            Commission.objects.filter(affiliate_id=affiliate_id)
            .exclude(status=CommissionStatus.REVERSED)
            .aggregate(s=Sum("amount", default=Decimal(0)))["s"]
        )
        final = Affiliate.objects.get(pk=affiliate_id).commission_rate
        assert final == tier_for_total(total, tiers()).commission_rate, (round_no, total, final)
        chain = list(
            TierEvent.objects.filter(affiliate_id=affiliate_id).order_by("id").values_list("from_rate", "to_rate")
        )
        rate = 20
        for from_rate, to_rate in chain:  # one event per real change: each starts where the last one ended
            assert (from_rate, to_rate != from_rate) == (rate, True), (round_no, chain)
            rate = to_rate
        assert rate == final
        assert rate_audit(affiliate_id) == [("promote" if t > f else "demote", str(f), str(t)) for f, t in chain]
        total_events += len(chain)
    with capsys.disabled():
        print(f"\n[figures] storm: {rounds} rounds, {total_events} tier events, final rate matched the sum every round")


def test_concurrent_approval_ticks_approve_each_held_commission_once(settings):
    settings.COMMISSION_HOLD_DAYS = 30
    for round_no in range(8):
        commissions = CommissionFactory.create_batch(25)
        Commission.objects.filter(pk__in=[c.pk for c in commissions]).update(created_at="2020-01-01T00:00:00Z")

        outcomes = race(
            [
                lambda i=i: services.approve_held_commissions(actor=SystemActor(f"tick-{i}"), batch_size=7)
                for i in range(4)
            ]
        )

        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
        assert sum(o.result for o in outcomes) == 25, round_no
        assert Commission.objects.filter(status="approved").count() == 25 * (round_no + 1)
        assert AuditEntry.objects.filter(content_type__model="commission").count() == 25 * (round_no + 1)
    assert not BeaconCount.objects.filter(kind="commission_race_lost").exists()


def test_partial_refunds_racing_the_hold_approval_leave_exactly_the_net_earned_in_the_books():
    # The approval job (commission row lock, skip_locked) against two partial refunds and a replay
    # (affiliate row lock, then commission row lock): whichever goes first, the books end with the
    # commission less its proportional refund, never the full amount, never a reversal twice.
    rounds = 12
    for round_no in range(rounds):
        referral = ReferralFactory(affiliate__commission_rate=20)
        commission = CommissionFactory(
            affiliate=referral.affiliate, amount=Decimal("800.00"), invoice_amount_paid=400_000
        )
        Commission.objects.filter(pk=commission.pk).update(created_at=timezone.now() - timedelta(days=60))
        invoice, charge = commission.stripe_invoice_id, f"ch_{round_no}"
        first = charge_refunded(f"evt_{round_no}_a", invoice_id=invoice, charge_id=charge, amount_refunded=100_000)
        second = charge_refunded(f"evt_{round_no}_b", invoice_id=invoice, charge_id=charge, amount_refunded=300_000)
        racers = [
            lambda: services.approve_held_commissions(actor=SYSTEM),
            lambda: deliver(first),
            lambda: deliver(second),
            lambda: deliver(first),
        ]
        random.shuffle(racers)

        outcomes = race(racers)

        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
        assert all(getattr(o.result, "status_code", 200) == 200 for o in outcomes), round_no
        services.approve_held_commissions(actor=SYSTEM)  # a tick that skipped the locked row: the next one
        commission.refresh_from_db()
        assert (commission.status, commission.reversed_minor) == ("approved", 60_000), round_no
        amounts = Transfer.objects.filter(reference=f"affiliates.commission:{commission.pk}")
        earned = sum(amounts.filter(kind=TransferKind.COMMISSION_EARNED).values_list("amount", flat=True))
        reversed_ = sum(amounts.filter(kind=TransferKind.COMMISSION_REVERSED).values_list("amount", flat=True))
        assert earned - reversed_ == 20_000 and earned in (20_000, 60_000, 80_000), (round_no, earned, reversed_)
        assert check_balances() == []
