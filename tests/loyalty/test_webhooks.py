"""customer.subscription.* through the shared signed endpoint: the mirror, unordered deliveries,
and a cancellation that revokes the discount and deactivates its code at Stripe."""

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from audit.models import AuditEntry, BeaconCount
from core.actors import SystemActor
from loyalty.anniversaries import add_months
from loyalty.models import DiscountStatus, LoyaltyDiscount, Subscription, SubscriptionStatus
from loyalty.services import apply_loyalty
from loyalty.webhooks import mirror_subscription
from tests.factories.accounts import UserFactory
from tests.stripe_signing import post_stripe_event, stripe_event
from webhooks.models import WebhookEvent
from webhooks.stripe_events import _handlers

pytestmark = pytest.mark.django_db(transaction=True)
TICK = SystemActor("task:apply_loyalty")
EVENTS = ["customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted"]


def subscription_object(
    sub_id: str, customer: str, *, user: Any = None, status: str = "active", plan: str = "pro", start: datetime
) -> dict[str, Any]:
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "start_date": int(start.timestamp()),
        "items": {
            "object": "list",
            "data": [{"id": f"si_{sub_id}", "price": {"id": f"price_{plan}", "lookup_key": plan}}],
        },
        "metadata": {"user_id": str(user.pk)} if user else {},
    }


def deliver(event_id: str, event_type: str, obj: dict[str, Any], *, created: datetime | None = None):
    event = stripe_event(event_id, event_type, obj)
    if created is not None:
        event["created"] = int(created.timestamp())
    return post_stripe_event(Client(), event)


def test_the_handler_is_registered_for_the_three_subscription_events_beside_others():
    for event_type in EVENTS:
        assert mirror_subscription in _handlers[event_type]


def test_created_mirrors_the_subscription_and_a_replay_is_a_no_op():
    user = UserFactory()
    start = timezone.now().replace(microsecond=0) - timedelta(days=10)
    obj = subscription_object("sub_1", "cus_1", user=user, start=start)

    first = deliver("evt_1", "customer.subscription.created", obj)
    replay = deliver("evt_1", "customer.subscription.created", obj)

    assert first.status_code == replay.status_code == 200
    assert first.json()["outcome"] == "processed" and replay.json()["outcome"] == "duplicate"
    subscription = Subscription.objects.get()
    assert (subscription.user, subscription.stripe_customer_id, subscription.plan, subscription.status) == (
        user,
        "cus_1",
        "pro",
        "active",
    )
    assert subscription.pro_started_at == start
    assert WebhookEvent.objects.filter(event_id="evt_1").count() == 1


def test_an_older_event_arriving_late_changes_nothing():
    user = UserFactory()
    start = timezone.now().replace(microsecond=0) - timedelta(days=10)
    now = timezone.now()
    deliver(
        "evt_new",
        "customer.subscription.updated",
        subscription_object("sub_1", "cus_1", user=user, status="past_due", start=start),
        created=now,
    )
    deliver(
        "evt_old",
        "customer.subscription.created",
        subscription_object("sub_1", "cus_1", user=user, start=start),
        created=now - timedelta(minutes=5),
    )
    assert Subscription.objects.get().status == SubscriptionStatus.PAST_DUE


def test_an_upgrade_to_pro_starts_the_pro_period_at_the_event_and_a_downgrade_ends_it():
    user = UserFactory()
    start = timezone.now().replace(microsecond=0) - timedelta(days=100)
    upgraded_at = timezone.now().replace(microsecond=0) - timedelta(days=3)
    deliver(
        "evt_1",
        "customer.subscription.created",
        subscription_object("sub_1", "cus_1", user=user, plan="basic", start=start),
        created=start,
    )
    assert Subscription.objects.get().pro_started_at is None

    deliver(
        "evt_2",
        "customer.subscription.updated",
        subscription_object("sub_1", "cus_1", user=user, start=start),
        created=upgraded_at,
    )
    deliver(
        "evt_3",
        "customer.subscription.updated",
        subscription_object("sub_1", "cus_1", user=user, start=start),
        created=upgraded_at + timedelta(days=1),
    )
    assert Subscription.objects.get().pro_started_at == upgraded_at  # a continuing Pro period keeps its start

    deliver(
        "evt_4",
        "customer.subscription.updated",
        subscription_object("sub_1", "cus_1", user=user, plan="basic", start=start),
        created=upgraded_at + timedelta(days=2),
    )
    assert Subscription.objects.get().pro_started_at is None


def test_an_event_for_an_unknown_customer_is_acknowledged_and_reported():
    response = deliver(
        "evt_1", "customer.subscription.created", subscription_object("sub_x", "cus_x", start=timezone.now())
    )
    assert response.status_code == 200
    assert not Subscription.objects.exists()
    assert BeaconCount.objects.get(kind="loyalty_subscription_unmatched").count == 1


def test_an_unknown_customer_on_another_plan_is_not_an_alarm():
    obj = subscription_object("sub_x", "cus_x", plan="basic", start=timezone.now())
    assert deliver("evt_1", "customer.subscription.created", obj).status_code == 200
    assert not Subscription.objects.exists() and not BeaconCount.objects.exists()


def test_a_subscription_first_seen_through_an_update_counts_pro_from_that_event():
    # Its earlier history (a Basic period, say) is unknown: the anniversary must not come early.
    user = UserFactory()
    start = timezone.now().replace(microsecond=0) - timedelta(days=400)
    seen_at = timezone.now().replace(microsecond=0) - timedelta(days=2)
    obj = subscription_object("sub_1", "cus_1", user=user, start=start)
    deliver("evt_1", "customer.subscription.updated", obj, created=seen_at)
    deliver("evt_0", "customer.subscription.created", obj, created=start)  # the older event, late
    assert Subscription.objects.get().pro_started_at == seen_at


def test_a_later_subscription_of_a_known_customer_finds_its_user_without_metadata():
    user = UserFactory()
    start = timezone.now() - timedelta(days=1)
    deliver("evt_1", "customer.subscription.created", subscription_object("sub_1", "cus_1", user=user, start=start))
    deliver("evt_2", "customer.subscription.created", subscription_object("sub_2", "cus_1", start=start))
    assert set(Subscription.objects.values_list("stripe_subscription_id", "user")) == {
        ("sub_1", user.pk),
        ("sub_2", user.pk),
    }


def test_a_bad_signature_writes_nothing():
    event = stripe_event(
        "evt_1", "customer.subscription.created", subscription_object("sub_1", "cus_1", start=timezone.now())
    )
    payload = json.dumps(event).encode()
    response = Client().post(
        "/api/stripe/webhook/", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE="t=1,v1=bad"
    )
    assert response.status_code == 400 and not Subscription.objects.exists() and not WebhookEvent.objects.exists()


def test_cancel_then_resubscribe_revokes_the_old_code_and_grants_a_new_one_only_after_12_new_months(stripe_standin):
    user = UserFactory()
    first_start = add_months(timezone.now(), -13)
    deliver(
        "evt_c1",
        "customer.subscription.created",
        subscription_object("sub_1", "cus_1", user=user, start=first_start),
        created=first_start,
    )
    apply_loyalty(actor=TICK)
    old = LoyaltyDiscount.objects.get()
    assert old.status == DiscountStatus.APPLIED and len(mail.outbox) == 1

    # cancel: the live discount is revoked and its code deactivated at Stripe, on commit
    cancelled = deliver(
        "evt_d1",
        "customer.subscription.deleted",
        subscription_object("sub_1", "cus_1", user=user, status="canceled", start=first_start),
    )
    assert cancelled.status_code == 200
    old.refresh_from_db()
    assert old.status == DiscountStatus.REVOKED and old.stripe_closed_at is not None
    assert stripe_standin.promotion_codes[old.stripe_promotion_code_id]["active"] is False
    assert AuditEntry.objects.filter(target="revoked", actor_label="system:webhook:stripe").count() == 1
    assert Subscription.objects.get(stripe_subscription_id="sub_1").status == SubscriptionStatus.CANCELED

    # resubscribe: a new subscription, a new Pro period
    resubscribed_at = timezone.now().replace(microsecond=0)
    deliver(
        "evt_c2",
        "customer.subscription.created",
        subscription_object("sub_2", "cus_1", user=user, start=resubscribed_at),
        created=resubscribed_at,
    )
    assert apply_loyalty(actor=TICK).created == 0
    with time_machine.travel(add_months(resubscribed_at, 12) - timedelta(minutes=1)):
        assert apply_loyalty(actor=TICK).created == 0
    with time_machine.travel(add_months(resubscribed_at, 12) + timedelta(minutes=1)):
        assert apply_loyalty(actor=TICK).applied == 1

    new = LoyaltyDiscount.objects.get(status=DiscountStatus.APPLIED)
    assert new.subscription.stripe_subscription_id == "sub_2" and new.anniversary == 1
    codes = {c["id"]: c for c in stripe_standin.promotion_codes.values()}
    assert len(codes) == 2 and [c["active"] for c in codes.values()].count(True) == 1
    assert codes[new.stripe_promotion_code_id]["active"] is True
    assert (
        codes[new.stripe_promotion_code_id]["code"] == codes[old.stripe_promotion_code_id]["code"]
    )  # reusable once inactive
    assert len(mail.outbox) == 2


def test_a_redelivered_cancellation_revokes_and_deactivates_once(stripe_standin):
    user = UserFactory()
    start = add_months(timezone.now(), -13)
    deliver(
        "evt_c1",
        "customer.subscription.created",
        subscription_object("sub_1", "cus_1", user=user, start=start),
        created=start,
    )
    apply_loyalty(actor=TICK)
    cancel = subscription_object("sub_1", "cus_1", user=user, status="canceled", start=start)

    for _ in range(3):
        assert deliver("evt_d1", "customer.subscription.deleted", cancel).status_code == 200
    deliver("evt_d1_again", "customer.subscription.deleted", cancel)  # a second event id for the same fact

    assert AuditEntry.objects.filter(target="revoked").count() == 1
    assert len(stripe_standin.requests_to("POST", r"^/v1/promotion_codes/promo_")) == 1
