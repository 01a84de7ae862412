"""Commission and tier services on one connection: amounts, reversal, approval, evaluation, sweeper."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from affiliates import services
from affiliates.models import Affiliate, Commission, CommissionStatus, TierEvent
from affiliates.services import EvaluationOutcome, PaidInvoice
from audit.models import AuditEntry
from core.actors import SystemActor
from core.errors import Conflict, IllegalTransition, NotFound
from tests.factories.affiliates import AffiliateFactory, CommissionFactory, ReferralFactory

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("test")


def paid(invoice_id: str, customer: str, amount_paid: int = 400_000, currency: str = "usd") -> PaidInvoice:
    return PaidInvoice(f"evt_{invoice_id}", invoice_id, customer, amount_paid, currency)


def age(commission: Commission, days: float) -> None:
    Commission.objects.filter(pk=commission.pk).update(created_at=timezone.now() - timedelta(days=days))


def affiliate_audit(affiliate: Affiliate):
    return AuditEntry.objects.filter(content_type__model="affiliate", object_id=str(affiliate.pk)).order_by("id")


@pytest.mark.parametrize(
    ("amount_paid", "currency", "rate", "expected"),
    [
        (400_000, "usd", 20, Decimal("800.00")),
        (400_000, "USD", 25, Decimal("1000.00")),
        (333, "eur", 25, Decimal("0.83")),  # 0.8325 rounds half up at the cent
        (1_000, "usd", 25, Decimal("2.50")),
        (5_000, "jpy", 20, Decimal("1000.00")),  # zero-decimal: 5,000 yen, not 50
    ],
)
def test_commission_amount_is_amount_paid_times_rate(amount_paid, currency, rate, expected):
    assert services.commission_amount(amount_paid=amount_paid, currency=currency, rate=rate) == expected


def test_record_commission_uses_the_current_rate_and_bumps_the_version(django_capture_on_commit_callbacks):
    referral = ReferralFactory(affiliate__commission_rate=25)

    with django_capture_on_commit_callbacks() as callbacks:
        commission = services.record_commission(invoice=paid("in_1", referral.stripe_customer_id), actor=SYSTEM)

    assert (commission.amount, commission.rate, commission.currency, commission.status) == (
        Decimal("1000.00"),
        25,
        "USD",
        "pending",
    )
    assert commission.stripe_event_id == "evt_in_1"
    assert Affiliate.objects.get().commission_version == 1
    assert len(callbacks) == 1  # the evaluation, scheduled for after commit only


def test_a_second_event_for_the_same_invoice_is_already_recorded_not_an_error(django_capture_on_commit_callbacks):
    referral = ReferralFactory()
    services.record_commission(invoice=paid("in_1", referral.stripe_customer_id), actor=SYSTEM)

    with django_capture_on_commit_callbacks() as callbacks:
        again = services.record_commission(
            invoice=PaidInvoice("evt_other", "in_1", referral.stripe_customer_id, 400_000, "usd"), actor=SYSTEM
        )

    assert again is None and callbacks == []
    assert Commission.objects.count() == 1
    assert Affiliate.objects.get().commission_version == 1  # the duplicate's bump rolled back with its insert


@pytest.mark.parametrize("case", ["no_referral", "nothing_paid"])
def test_nothing_is_recorded_without_a_referral_or_without_an_amount(case):
    referral = ReferralFactory()
    customer = "cus_unknown" if case == "no_referral" else referral.stripe_customer_id
    amount = 400_000 if case == "no_referral" else 0

    assert services.record_commission(invoice=paid("in_1", customer, amount), actor=SYSTEM) is None
    assert not Commission.objects.exists()
    assert Affiliate.objects.get().commission_version == 0


def test_unchanged_evaluation_writes_nothing():
    affiliate = AffiliateFactory(commission_rate=20)
    CommissionFactory(affiliate=affiliate, amount=Decimal("1499.99"))

    with CaptureQueriesContext(connection) as queries:
        result = services.evaluate_tier(affiliate_id=affiliate.pk, actor=SYSTEM)

    assert result.outcome == EvaluationOutcome.UNCHANGED and result.window_total == Decimal("1499.99")
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))]
    assert writes == []
    assert not TierEvent.objects.exists() and not AuditEntry.objects.exists()


def test_promotion_writes_the_rate_one_event_and_one_audit_row():
    affiliate = AffiliateFactory(commission_rate=20)
    CommissionFactory.create_batch(2, affiliate=affiliate, amount=Decimal("750.00"))

    result = services.evaluate_tier(affiliate_id=affiliate.pk, actor=SYSTEM, cause="invoice.paid evt_9")

    assert (result.outcome, result.from_rate, result.to_rate) == (EvaluationOutcome.CHANGED, 20, 25)
    affiliate.refresh_from_db()
    assert affiliate.commission_rate == 25
    event = TierEvent.objects.get()
    assert (event.from_rate, event.to_rate, event.tier_name, event.window_total, event.cause, event.status) == (
        20,
        25,
        "Gold",
        Decimal("1500.00"),
        "invoice.paid evt_9",
        "active",
    )
    entry = affiliate_audit(affiliate).get()
    assert (entry.field, entry.transition, entry.source, entry.target, entry.actor_label) == (
        "commission_rate",
        "promote",
        "20",
        "25",
        "system:test",
    )
    assert "evt_9" in entry.reason and "Gold" in entry.reason


def test_only_non_reversed_commissions_of_the_last_90_days_in_the_program_currency_count():
    affiliate = AffiliateFactory(commission_rate=25)
    CommissionFactory(affiliate=affiliate, amount=Decimal("900.00"))
    age(CommissionFactory(affiliate=affiliate, amount=Decimal("900.00")), days=91)
    CommissionFactory(affiliate=affiliate, amount=Decimal("900.00"), status=CommissionStatus.REVERSED)
    CommissionFactory(affiliate=affiliate, amount=Decimal("900.00"), currency="EUR")
    age(CommissionFactory(affiliate=affiliate, amount=Decimal("100.00"), status="approved"), days=89)

    result = services.evaluate_tier(affiliate_id=affiliate.pk, actor=SYSTEM)

    assert result.window_total == Decimal("1000.00")
    assert (result.outcome, result.to_rate) == (EvaluationOutcome.CHANGED, 20)
    assert affiliate_audit(affiliate).get().transition == "demote"


def test_refund_after_promotion_demotes_with_one_event(django_capture_on_commit_callbacks):
    referral = ReferralFactory(affiliate__commission_rate=20)
    for invoice in ("in_1", "in_2"):
        with django_capture_on_commit_callbacks(execute=True):
            services.record_commission(invoice=paid(invoice, referral.stripe_customer_id), actor=SYSTEM)
    assert Affiliate.objects.get().commission_rate == 25

    with django_capture_on_commit_callbacks(execute=True):
        reversed_ = services.reverse_invoice_commission(stripe_invoice_id="in_2", actor=SYSTEM, reason="refund")

    assert reversed_.status == "reversed"
    assert Affiliate.objects.get().commission_rate == 20
    assert list(TierEvent.objects.order_by("id").values_list("from_rate", "to_rate")) == [(20, 25), (25, 20)]
    assert [e.transition for e in affiliate_audit(referral.affiliate)] == ["promote", "demote"]


def test_reversing_an_already_reversed_invoice_commission_is_a_noop():
    commission = CommissionFactory(status=CommissionStatus.REVERSED)
    assert (
        services.reverse_invoice_commission(stripe_invoice_id=commission.stripe_invoice_id, actor=SYSTEM, reason="x")
        is None
    )
    assert services.reverse_invoice_commission(stripe_invoice_id="in_nobody", actor=SYSTEM, reason="x") is None
    assert not AuditEntry.objects.exists()


def test_an_approved_commission_can_still_be_reversed():
    commission = CommissionFactory(status=CommissionStatus.APPROVED)
    services.reverse_invoice_commission(stripe_invoice_id=commission.stripe_invoice_id, actor=SYSTEM, reason="refund")
    commission.refresh_from_db()
    assert commission.status == "reversed"
    entry = AuditEntry.objects.get(content_type__model="commission")
    assert (entry.source, entry.target, entry.reason) == ("approved", "reversed", "refund")


def test_reverse_from_a_stale_status_is_a_conflict_and_reversed_is_final():
    commission = CommissionFactory()
    services.approve_commission(commission_id=commission.pk, actor=SYSTEM)

    with pytest.raises(Conflict) as caught:
        services.reverse_commission(commission_id=commission.pk, actor=SYSTEM, expected_status="pending")
    assert caught.value.details["current_status"] == "approved"

    services.reverse_commission(commission_id=commission.pk, actor=SYSTEM)
    with pytest.raises(IllegalTransition):
        services.approve_commission(commission_id=commission.pk, actor=SYSTEM, expected_status="reversed")
    with pytest.raises(NotFound):
        services.reverse_commission(commission_id=10**9, actor=SYSTEM)


def test_approve_held_commissions_approves_only_pending_ones_past_the_hold(settings):
    settings.COMMISSION_HOLD_DAYS = 30
    old, fresh, reversed_old = CommissionFactory(), CommissionFactory(), CommissionFactory(status="reversed")
    age(old, days=30.01)
    age(fresh, days=29.9)
    age(reversed_old, days=45)

    assert services.approve_held_commissions(actor=SYSTEM, batch_size=1) == 1
    assert services.approve_held_commissions(actor=SYSTEM) == 0

    statuses = dict(Commission.objects.values_list("pk", "status"))
    assert statuses == {old.pk: "approved", fresh.pk: "pending", reversed_old.pk: "reversed"}
    entry = AuditEntry.objects.get()
    assert (entry.object_id, entry.target, entry.actor_label, entry.reason) == (
        str(old.pk),
        "approved",
        "system:test",
        "held 30 days",
    )


def test_sweeper_evaluates_exactly_the_affiliates_whose_rate_disagrees_with_their_total():
    lost_enqueue = AffiliateFactory(commission_rate=20)
    CommissionFactory.create_batch(2, affiliate=lost_enqueue, amount=Decimal("800.00"))
    aged_out = AffiliateFactory(commission_rate=25)
    age(CommissionFactory(affiliate=aged_out, amount=Decimal("2000.00")), days=90.01)
    in_tier = AffiliateFactory(commission_rate=25)
    CommissionFactory(affiliate=in_tier, amount=Decimal("1500.00"))
    idle = AffiliateFactory(commission_rate=20)

    with CaptureQueriesContext(connection) as queries:
        results = services.reevaluate_changed_affiliates(actor=SYSTEM)

    assert {(r.affiliate_id, r.outcome, r.to_rate) for r in results} == {
        (lost_enqueue.pk, "changed", 25),
        (aged_out.pk, "changed", 20),
    }
    assert dict(Affiliate.objects.values_list("pk", "commission_rate")) == {
        lost_enqueue.pk: 25,
        aged_out.pk: 20,
        in_tier.pk: 25,
        idle.pk: 20,
    }
    assert len(queries) < 30
    assert services.reevaluate_changed_affiliates(actor=SYSTEM) == []  # a second tick finds nothing


def test_subscription_update_enqueues_an_evaluation_of_the_referrer(django_capture_on_commit_callbacks):
    referral = ReferralFactory(affiliate__commission_rate=20)
    CommissionFactory.create_batch(2, affiliate=referral.affiliate, amount=Decimal("800.00"))

    with django_capture_on_commit_callbacks(execute=True):
        found = services.request_tier_evaluation(stripe_customer_id=referral.stripe_customer_id, cause="sub evt_1")
        assert services.request_tier_evaluation(stripe_customer_id="cus_nobody", cause="x") is None

    assert found == referral.affiliate_id
    assert TierEvent.objects.get().cause == "sub evt_1"
