"""The affiliate handlers behind POST /api/stripe/webhook/, through real signed HTTP deliveries."""

import json
import time
from decimal import Decimal

import pytest

from affiliates.models import Affiliate, Commission, TierEvent
from audit.models import AuditEntry
from tests.affiliates.events import charge_refunded, invoice_paid, invoice_voided, subscription_updated
from tests.factories.affiliates import CommissionFactory, ReferralFactory
from tests.stripe_signing import post_stripe_event, sign
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """Post a signed event; run what it scheduled on commit (the eager evaluate_tier task)."""

    def post(event: dict):
        with django_capture_on_commit_callbacks(execute=True):
            return post_stripe_event(client, event)

    return post


@pytest.fixture
def referral():
    return ReferralFactory(stripe_customer_id="cus_resto", affiliate__commission_rate=20)


def test_invoice_paid_records_one_commission_and_replays_are_noops(deliver, referral):
    event = invoice_paid("evt_1", invoice_id="in_1", customer="cus_resto", amount_paid=123_456)

    first, replay = deliver(event), deliver(event)

    assert (first.status_code, first.json()["outcome"]) == (200, "processed")
    assert (replay.status_code, replay.json()["outcome"]) == (200, "duplicate")
    commission = Commission.objects.get()
    assert (commission.affiliate_id, commission.stripe_invoice_id, commission.stripe_event_id) == (
        referral.affiliate_id,
        "in_1",
        "evt_1",
    )
    assert (commission.amount, commission.currency, commission.rate) == (Decimal("246.91"), "USD", 20)


def test_two_paid_invoices_crossing_the_threshold_promote_once(deliver, referral):
    deliver(invoice_paid("evt_1", invoice_id="in_1", customer="cus_resto"))
    assert Affiliate.objects.get().commission_rate == 20

    deliver(invoice_paid("evt_2", invoice_id="in_2", customer={"id": "cus_resto", "object": "customer"}))

    assert Affiliate.objects.get().commission_rate == 25
    event = TierEvent.objects.get()
    assert (event.from_rate, event.to_rate, event.cause) == (20, 25, "invoice.paid evt_2")


def test_a_second_event_for_a_recorded_invoice_is_200_and_records_nothing(deliver, referral):
    deliver(invoice_paid("evt_1", invoice_id="in_1", customer="cus_resto"))
    response = deliver(invoice_paid("evt_1_again", invoice_id="in_1", customer="cus_resto"))
    assert (response.status_code, response.json()["outcome"]) == (200, "processed")
    assert Commission.objects.count() == 1 and WebhookEvent.objects.count() == 2


def test_invoice_of_a_customer_nobody_referred_is_200_and_records_nothing(deliver, referral):
    response = deliver(invoice_paid("evt_1", invoice_id="in_1", customer="cus_walk_in"))
    assert response.status_code == 200
    assert not Commission.objects.exists() and not TierEvent.objects.exists()


def test_full_refund_after_promotion_reverses_and_demotes_with_one_event(deliver, referral):
    deliver(invoice_paid("evt_1", invoice_id="in_1", customer="cus_resto"))
    deliver(invoice_paid("evt_2", invoice_id="in_2", customer="cus_resto"))

    response = deliver(charge_refunded("evt_3", invoice_id="in_2"))
    replay = deliver(charge_refunded("evt_3", invoice_id="in_2"))
    voided_too = deliver(invoice_voided("evt_4", invoice_id="in_2", customer="cus_resto"))

    assert [r.status_code for r in (response, replay, voided_too)] == [200, 200, 200]
    assert dict(Commission.objects.values_list("stripe_invoice_id", "status")) == {
        "in_1": "pending",
        "in_2": "reversed",
    }
    assert Affiliate.objects.get().commission_rate == 20
    assert list(TierEvent.objects.order_by("id").values_list("from_rate", "to_rate")) == [(20, 25), (25, 20)]
    reversal = AuditEntry.objects.get(content_type__model="commission")
    assert (reversal.target, reversal.actor_label, reversal.reason) == (
        "reversed",
        "system:webhook:stripe",
        "charge.refunded evt_3",
    )


def test_partial_refund_reduces_proportionally_and_refund_without_invoice_changes_nothing(deliver, referral):
    deliver(invoice_paid("evt_1", invoice_id="in_1", customer="cus_resto"))

    partial = deliver(charge_refunded("evt_2", invoice_id="in_1", refunded=False))  # 1_000 of 400_000
    orphan = deliver(charge_refunded("evt_3", invoice_id=None))

    assert (partial.status_code, orphan.status_code) == (200, 200)
    commission = Commission.objects.get()
    # 80_000 cents * 1_000 / 400_000 = 200 cents taken back; still pending (nothing was earned yet)
    assert (commission.status, commission.reversed_minor, commission.net_minor) == ("pending", 200, 79_800)


def test_invoice_voided_reverses_its_commission(deliver, referral):
    commission = CommissionFactory(affiliate=referral.affiliate, stripe_invoice_id="in_9", status="approved")
    deliver(invoice_voided("evt_1", invoice_id="in_9", customer="cus_resto"))
    commission.refresh_from_db()
    assert commission.status == "reversed"


def test_subscription_updated_re_evaluates_the_referrer(deliver, referral, stripe_standin):
    # Commissions whose evaluation was lost: the subscription change re-evaluates the referrer.
    # (The loyalty mirror reads the subscription at Stripe on the same event: the stand-in answers.)
    CommissionFactory.create_batch(2, affiliate=referral.affiliate, amount=Decimal("800.00"))

    response = deliver(subscription_updated("evt_sub", customer="cus_resto"))

    assert response.status_code == 200
    assert Affiliate.objects.get().commission_rate == 25
    assert TierEvent.objects.get().cause == "customer.subscription.updated evt_sub"


def test_malformed_invoice_is_400_and_rolls_back_the_claim(deliver, referral):
    event = invoice_paid("evt_1", invoice_id="in_1", customer="cus_resto")
    del event["data"]["object"]["amount_paid"]

    response = deliver(event)

    assert response.status_code == 400 and response.json()["error"] == "invalid_stripe_payload"
    assert not WebhookEvent.objects.exists() and not Commission.objects.exists()


@pytest.mark.parametrize("kind", ["unsigned", "wrong_secret", "tampered", "stale"])
def test_bad_signatures_are_400_and_write_nothing(client, referral, kind):
    event = invoice_paid("evt_1", invoice_id="in_1", customer="cus_resto")
    payload = json.dumps(event).encode()
    headers = {
        "unsigned": {},
        "wrong_secret": {"HTTP_STRIPE_SIGNATURE": sign(payload, secret="whsec_attacker")},
        "tampered": {"HTTP_STRIPE_SIGNATURE": sign(payload.replace(b"400000", b"900000"))},
        "stale": {"HTTP_STRIPE_SIGNATURE": sign(payload, timestamp=int(time.time()) - 301)},
    }[kind]

    response = client.post("/api/stripe/webhook/", data=payload, content_type="application/json", **headers)

    assert response.status_code == 400 and response.json()["error"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()
    assert not Commission.objects.exists() and not TierEvent.objects.exists() and not AuditEntry.objects.exists()
    assert Affiliate.objects.get().commission_version == 0
