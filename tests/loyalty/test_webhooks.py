"""customer.subscription.* through the shared signed endpoint: every event makes the mirror read the
subscription at Stripe (the stand-in here) and mirror that, whatever order the events come in and
whatever their payloads say; a cancellation revokes the discount and deactivates its code."""

import json
import random
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
from tests.concurrency import race
from tests.factories.accounts import UserFactory
from tests.stripe_signing import post_stripe_event, stripe_event
from webhooks.models import WebhookEvent
from webhooks.stripe_events import _handlers

pytestmark = pytest.mark.django_db(transaction=True)
TICK = SystemActor("task:apply_loyalty")
EVENTS = ["customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted"]
READS = r"^/v1/subscriptions/"


@pytest.fixture(autouse=True)
def stripe(stripe_standin):
    """Every delivery reads the subscription at Stripe: the stand-in plays it in every test."""
    return stripe_standin


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


def at_stripe(
    standin, sub_id: str, customer: str, *, user: Any = None, status: str = "active", plan: str = "pro", start: datetime
) -> dict:
    """The subscription as Stripe holds it from now on (what GET /v1/subscriptions/{id} answers)."""
    return standin.set_subscription(
        sub_id,
        customer=customer,
        status=status,
        plan=plan,
        metadata={"user_id": str(user.pk)} if user else {},
        start_date=int(start.timestamp()),
    )


def deliver(event_id: str, event_type: str, obj: dict[str, Any], *, created: datetime | None = None):
    event = stripe_event(event_id, event_type, obj)
    if created is not None:
        event["created"] = int(created.timestamp())
    return post_stripe_event(Client(), event)


def mirrored(sub_id: str = "sub_1") -> tuple[str, str, str]:
    row = Subscription.objects.get(stripe_subscription_id=sub_id)
    return row.stripe_customer_id, row.plan, row.status


def test_the_handler_is_registered_for_the_three_subscription_events_beside_others():
    for event_type in EVENTS:
        assert mirror_subscription in _handlers[event_type]


def test_created_mirrors_the_subscription_and_a_replay_is_a_no_op_without_a_read(stripe):
    user = UserFactory()
    start = timezone.now().replace(microsecond=0) - timedelta(days=10)
    at_stripe(stripe, "sub_1", "cus_1", user=user, start=start)
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
    assert subscription.pro_started_at == start  # created as Pro and Pro now: Pro since its start_date
    assert WebhookEvent.objects.filter(event_id="evt_1").count() == 1
    assert len(stripe.requests_to("GET", READS)) == 1  # the replay read nothing


def test_the_mirror_is_what_stripe_says_now_not_what_the_payload_says(stripe):
    user = UserFactory()
    start = timezone.now().replace(microsecond=0) - timedelta(days=10)
    at_stripe(stripe, "sub_1", "cus_1", user=user, status="past_due", start=start)

    # an old copy in the payload: active
    deliver("evt_1", "customer.subscription.updated", subscription_object("sub_1", "cus_1", user=user, start=start))

    assert mirrored() == ("cus_1", "pro", SubscriptionStatus.PAST_DUE)


# --- order: the same second, either way round ---------------------------------------------------


def _due_pro_subscriber(stripe) -> tuple[Any, datetime]:
    """A Pro subscriber for 13 months, mirrored from its `created` event: its anniversary is due."""
    user = UserFactory()
    start = add_months(timezone.now(), -13).replace(microsecond=0)
    at_stripe(stripe, "sub_1", "cus_1", user=user, start=start)
    created = subscription_object("sub_1", "cus_1", user=user, start=start)
    assert deliver("evt_created", "customer.subscription.created", created, created=start).status_code == 200
    return user, start


@pytest.mark.parametrize("newer_first", [True, False], ids=["newer-delivered-first", "older-delivered-first"])
def test_same_second_updates_in_either_order_leave_stripes_current_state_and_grant_nothing(stripe, newer_first):
    # given a due Pro subscriber who went past_due, announced by two updates of the same second
    user, start = _due_pro_subscriber(stripe)
    second = timezone.now().replace(microsecond=0)
    older = subscription_object("sub_1", "cus_1", user=user, status="active", start=start)
    newer = subscription_object("sub_1", "cus_1", user=user, status="past_due", start=start)
    at_stripe(stripe, "sub_1", "cus_1", user=user, status="past_due", start=start)  # Stripe now

    # when both are delivered, in either order
    deliveries = [("evt_newer", newer), ("evt_older", older)]
    for event_id, obj in deliveries if newer_first else reversed(deliveries):
        assert deliver(event_id, "customer.subscription.updated", obj, created=second).status_code == 200

    # then the mirror is Stripe's current state, and the past-due subscriber gets no code
    assert mirrored() == ("cus_1", "pro", SubscriptionStatus.PAST_DUE)
    report = apply_loyalty(actor=TICK)
    assert report.scanned == 0 and report.created == 0
    assert not LoyaltyDiscount.objects.exists() and stripe.promotion_codes == {}

    # ... and the anniversary really was due: once Stripe says active again, the code comes
    at_stripe(stripe, "sub_1", "cus_1", user=user, status="active", start=start)
    deliver("evt_paid", "customer.subscription.updated", newer, created=second)  # a stale payload again
    assert mirrored() == ("cus_1", "pro", SubscriptionStatus.ACTIVE)
    assert apply_loyalty(actor=TICK).applied == 1 and len(stripe.promotion_codes) == 1


def test_shuffled_concurrent_deliveries_of_one_second_end_as_stripe_is(stripe):
    """Many rounds: Stripe's state moves, then a burst of same-second events (stale payloads among
    them) is delivered concurrently in a shuffled order; the mirror must end where Stripe is."""
    user = UserFactory()
    start = timezone.now().replace(microsecond=0) - timedelta(days=30)
    at_stripe(stripe, "sub_1", "cus_1", user=user, start=start)
    deliver("evt_c", "customer.subscription.created", subscription_object("sub_1", "cus_1", user=user, start=start))
    rng = random.Random(14)
    statuses = ["active", "past_due", "unpaid", "active", "past_due", "active", "trialing", "past_due"]
    for round_no, status in enumerate(statuses):
        at_stripe(stripe, "sub_1", "cus_1", user=user, status=status, start=start)
        second = timezone.now().replace(microsecond=0)
        events = [
            stripe_event(
                f"evt_{round_no}_{n}",
                "customer.subscription.updated",
                subscription_object("sub_1", "cus_1", user=user, status=rng.choice(statuses), start=start),
            )
            for n in range(6)
        ]
        for event in events:
            event["created"] = int(second.timestamp())
        rng.shuffle(events)

        outcomes = race([lambda e=e: post_stripe_event(Client(), e).status_code for e in events])

        assert [o.result for o in outcomes] == [200] * len(events), [repr(o.error) for o in outcomes]
        assert mirrored() == ("cus_1", "pro", status), f"round {round_no}"


def test_an_older_read_applied_after_a_newer_one_changes_nothing(stripe):
    # The race the tickets settle: read 1 starts first but its answer is applied last.
    from loyalty.services import read_subscription, sync_subscription

    user = UserFactory()
    start = timezone.now().replace(microsecond=0) - timedelta(days=30)
    at_stripe(stripe, "sub_1", "cus_1", user=user, start=start)
    now = timezone.now()
    first = read_subscription(stripe_subscription_id="sub_1", event_created=now)  # active
    at_stripe(stripe, "sub_1", "cus_1", user=user, status="past_due", start=start)
    second = read_subscription(stripe_subscription_id="sub_1", event_created=now)  # past_due

    sync_subscription(snapshot=second, actor=SystemActor("webhook:stripe"))
    assert sync_subscription(snapshot=first, actor=SystemActor("webhook:stripe")) is None  # stale

    assert mirrored() == ("cus_1", "pro", SubscriptionStatus.PAST_DUE)
    assert Subscription.objects.get().read_ticket == second.read_ticket > first.read_ticket


def test_a_cancellation_seen_by_an_older_read_still_ends_the_subscription(stripe):
    # Canceled is terminal at Stripe: whichever read saw it, the end stands.
    from loyalty.services import SubscriptionSnapshot, sync_subscription, take_read_ticket

    user = UserFactory()
    now = timezone.now()
    tickets = [take_read_ticket(stripe_subscription_id="sub_1") for _ in range(2)]

    def read(status: str, ticket: int) -> SubscriptionSnapshot:
        return SubscriptionSnapshot(
            stripe_subscription_id="sub_1",
            stripe_customer_id="cus_1",
            status=status,
            plan="pro",
            pro_since=now,
            event_created=now,
            read_ticket=ticket,
            user_id=user.pk,
        )

    sync_subscription(snapshot=read("active", tickets[1]), actor=SystemActor("webhook:stripe"))
    sync_subscription(snapshot=read("canceled", tickets[0]), actor=SystemActor("webhook:stripe"))

    assert mirrored() == ("cus_1", "pro", SubscriptionStatus.CANCELED)


# --- Stripe unavailable, or no longer knowing the subscription ----------------------------------


def test_when_stripe_cannot_answer_the_delivery_fails_and_its_redelivery_is_mirrored(stripe):
    user = UserFactory()
    start = timezone.now().replace(microsecond=0) - timedelta(days=10)
    at_stripe(stripe, "sub_1", "cus_1", user=user, start=start)
    deliver("evt_1", "customer.subscription.created", subscription_object("sub_1", "cus_1", user=user, start=start))
    at_stripe(stripe, "sub_1", "cus_1", user=user, status="past_due", start=start)
    stripe.add_fault(method="GET", path=READS, mode="error_500", times=3)  # outlasts the SDK's 2 retries
    stale = subscription_object("sub_1", "cus_1", user=user, status="unpaid", start=start)

    failed = deliver("evt_2", "customer.subscription.updated", stale)

    assert failed.status_code == 503 and failed.json()["error"] == "provider_unavailable"
    assert not WebhookEvent.objects.filter(event_id="evt_2").exists()  # not claimed: Stripe redelivers
    assert mirrored() == ("cus_1", "pro", SubscriptionStatus.ACTIVE)  # nothing from the payload

    redelivered = deliver("evt_2", "customer.subscription.updated", stale)

    assert redelivered.status_code == 200 and redelivered.json()["outcome"] == "processed"
    assert mirrored() == ("cus_1", "pro", SubscriptionStatus.PAST_DUE)  # Stripe's, not the payload's


def test_a_read_stripe_refuses_fails_the_delivery_and_raises_a_beacon(stripe, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_wrong"  # 401 at Stripe: a person must fix the configuration
    start = timezone.now()
    obj = subscription_object("sub_1", "cus_1", user=UserFactory(), start=start)

    response = deliver("evt_1", "customer.subscription.updated", obj)

    assert response.status_code == 503 and not WebhookEvent.objects.exists() and not Subscription.objects.exists()
    assert BeaconCount.objects.get(kind="loyalty_subscription_read_refused").count == 1


def test_a_subscription_stripe_no_longer_knows_is_mirrored_as_canceled_and_its_code_closed(stripe):
    user = UserFactory()
    start = add_months(timezone.now(), -13)
    at_stripe(stripe, "sub_1", "cus_1", user=user, start=start)
    deliver(
        "evt_c1",
        "customer.subscription.created",
        subscription_object("sub_1", "cus_1", user=user, start=start),
        created=start,
    )
    apply_loyalty(actor=TICK)
    discount = LoyaltyDiscount.objects.get()
    stripe.forget_subscription("sub_1")  # GET answers 404 resource_missing

    response = deliver("evt_d1", "customer.subscription.deleted", subscription_object("sub_1", "cus_1", start=start))

    assert response.status_code == 200
    assert mirrored() == ("cus_1", "pro", SubscriptionStatus.CANCELED)
    discount.refresh_from_db()
    assert discount.status == DiscountStatus.REVOKED and discount.stripe_closed_at is not None
    assert stripe.promotion_codes[discount.stripe_promotion_code_id]["active"] is False


def test_an_event_for_a_subscription_neither_stripe_nor_we_know_is_acknowledged():
    response = deliver(
        "evt_1", "customer.subscription.updated", subscription_object("sub_x", "cus_x", start=timezone.now())
    )
    assert response.status_code == 200 and response.json()["outcome"] == "processed"
    assert not Subscription.objects.exists()


# --- users, plans and the Pro period ----------------------------------------------------------


def test_an_upgrade_to_pro_starts_the_pro_period_at_the_read_and_a_downgrade_ends_it(stripe):
    user = UserFactory()
    start = timezone.now().replace(microsecond=0) - timedelta(days=100)
    at_stripe(stripe, "sub_1", "cus_1", user=user, plan="basic", start=start)
    deliver(
        "evt_1",
        "customer.subscription.created",
        subscription_object("sub_1", "cus_1", user=user, plan="basic", start=start),
        created=start,
    )
    assert Subscription.objects.get().pro_started_at is None

    at_stripe(stripe, "sub_1", "cus_1", user=user, plan="pro", start=start)
    before = timezone.now()
    deliver("evt_2", "customer.subscription.updated", subscription_object("sub_1", "cus_1", user=user, start=start))
    upgraded_at = Subscription.objects.get().pro_started_at
    assert upgraded_at is not None and before <= upgraded_at <= timezone.now()

    deliver("evt_3", "customer.subscription.updated", subscription_object("sub_1", "cus_1", user=user, start=start))
    assert Subscription.objects.get().pro_started_at == upgraded_at  # a continuing Pro period keeps its start

    at_stripe(stripe, "sub_1", "cus_1", user=user, plan="basic", start=start)
    deliver("evt_4", "customer.subscription.updated", subscription_object("sub_1", "cus_1", user=user, start=start))
    assert Subscription.objects.get().pro_started_at is None


def test_a_subscription_first_seen_through_an_update_counts_pro_from_that_read(stripe):
    # Its earlier history (a Basic period, say) is unknown: the anniversary must not come early.
    user = UserFactory()
    start = timezone.now().replace(microsecond=0) - timedelta(days=400)
    at_stripe(stripe, "sub_1", "cus_1", user=user, start=start)
    obj = subscription_object("sub_1", "cus_1", user=user, start=start)
    before = timezone.now()
    deliver("evt_1", "customer.subscription.updated", obj, created=before - timedelta(days=2))
    seen_at = Subscription.objects.get().pro_started_at
    assert seen_at is not None and before <= seen_at <= timezone.now()

    deliver("evt_0", "customer.subscription.created", obj, created=start)  # the older event, late
    assert Subscription.objects.get().pro_started_at == seen_at


def test_an_event_for_an_unknown_customer_is_acknowledged_and_reported(stripe):
    at_stripe(stripe, "sub_x", "cus_x", start=timezone.now())
    response = deliver(
        "evt_1", "customer.subscription.created", subscription_object("sub_x", "cus_x", start=timezone.now())
    )
    assert response.status_code == 200
    assert not Subscription.objects.exists()
    assert BeaconCount.objects.get(kind="loyalty_subscription_unmatched").count == 1


def test_an_unknown_customer_on_another_plan_is_not_an_alarm(stripe):
    at_stripe(stripe, "sub_x", "cus_x", plan="basic", start=timezone.now())
    obj = subscription_object("sub_x", "cus_x", plan="basic", start=timezone.now())
    assert deliver("evt_1", "customer.subscription.created", obj).status_code == 200
    assert not Subscription.objects.exists() and not BeaconCount.objects.exists()


def test_a_later_subscription_of_a_known_customer_finds_its_user_without_metadata(stripe):
    user = UserFactory()
    start = timezone.now() - timedelta(days=1)
    at_stripe(stripe, "sub_1", "cus_1", user=user, start=start)
    at_stripe(stripe, "sub_2", "cus_1", start=start)
    deliver("evt_1", "customer.subscription.created", subscription_object("sub_1", "cus_1", user=user, start=start))
    deliver("evt_2", "customer.subscription.created", subscription_object("sub_2", "cus_1", start=start))
    assert set(Subscription.objects.values_list("stripe_subscription_id", "user")) == {
        ("sub_1", user.pk),
        ("sub_2", user.pk),
    }


def test_a_bad_signature_writes_nothing_and_reads_nothing(stripe):
    event = stripe_event(
        "evt_1", "customer.subscription.created", subscription_object("sub_1", "cus_1", start=timezone.now())
    )
    payload = json.dumps(event).encode()
    response = Client().post(
        "/api/stripe/webhook/", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE="t=1,v1=bad"
    )
    assert response.status_code == 400 and not Subscription.objects.exists() and not WebhookEvent.objects.exists()
    assert stripe.requests == []


# --- cancellation ---------------------------------------------------------------------------------


def test_cancel_then_resubscribe_revokes_the_old_code_and_grants_a_new_one_only_after_12_new_months(stripe):
    user = UserFactory()
    first_start = add_months(timezone.now(), -13)
    at_stripe(stripe, "sub_1", "cus_1", user=user, start=first_start)
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
    at_stripe(stripe, "sub_1", "cus_1", user=user, status="canceled", start=first_start)
    cancelled = deliver(
        "evt_d1",
        "customer.subscription.deleted",
        subscription_object("sub_1", "cus_1", user=user, status="canceled", start=first_start),
    )
    assert cancelled.status_code == 200
    old.refresh_from_db()
    assert old.status == DiscountStatus.REVOKED and old.stripe_closed_at is not None
    assert stripe.promotion_codes[old.stripe_promotion_code_id]["active"] is False
    assert AuditEntry.objects.filter(target="revoked", actor_label="system:webhook:stripe").count() == 1
    assert Subscription.objects.get(stripe_subscription_id="sub_1").status == SubscriptionStatus.CANCELED

    # resubscribe: a new subscription, a new Pro period
    resubscribed_at = timezone.now().replace(microsecond=0)
    at_stripe(stripe, "sub_2", "cus_1", user=user, start=resubscribed_at)
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
    codes = {c["id"]: c for c in stripe.promotion_codes.values()}
    assert len(codes) == 2 and [c["active"] for c in codes.values()].count(True) == 1
    assert codes[new.stripe_promotion_code_id]["active"] is True
    assert (
        codes[new.stripe_promotion_code_id]["code"] == codes[old.stripe_promotion_code_id]["code"]
    )  # reusable once inactive
    assert len(mail.outbox) == 2


def test_a_redelivered_cancellation_revokes_and_deactivates_once(stripe):
    user = UserFactory()
    start = add_months(timezone.now(), -13)
    at_stripe(stripe, "sub_1", "cus_1", user=user, start=start)
    deliver(
        "evt_c1",
        "customer.subscription.created",
        subscription_object("sub_1", "cus_1", user=user, start=start),
        created=start,
    )
    apply_loyalty(actor=TICK)
    at_stripe(stripe, "sub_1", "cus_1", user=user, status="canceled", start=start)
    cancel = subscription_object("sub_1", "cus_1", user=user, status="canceled", start=start)

    for _ in range(3):
        assert deliver("evt_d1", "customer.subscription.deleted", cancel).status_code == 200
    deliver("evt_d1_again", "customer.subscription.deleted", cancel)  # a second event id for the same fact

    assert AuditEntry.objects.filter(target="revoked").count() == 1
    assert len(stripe.requests_to("POST", r"^/v1/promotion_codes/promo_")) == 1
