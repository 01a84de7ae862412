"""Scenario 6: loyalty subscription events of one second, stale and shuffled, to gunicorn.

Stripe's `event.created` has one-second resolution and deliveries are unordered, so the subscription
mirror reads each subscription at Stripe (the stand-in, in its own process, whose state this test
sets over its control endpoint) instead of trusting payloads. Due Pro subscribers move between
active and past_due at Stripe; after each move a burst of same-second `updated` events with stale
payloads, each delivered twice, goes to the 4 gunicorn workers shuffled and concurrently. Then the
apply_loyalty beat tick runs on the Celery workers.
Invariants: every mirror equals Stripe's state after every phase; every event processed once; a
code for each subscriber active at Stripe and none for a past-due one: one per customer, 0 duplicates.
"""

import json
import random
import time
from collections import Counter

import httpx
import pytest
from django.db import close_old_connections
from django.utils import timezone

from loyalty.anniversaries import add_months
from loyalty.models import DiscountStatus, LoyaltyDiscount, Subscription
from tests.chaos.conftest import SUMMARY
from tests.chaos.helpers import APPLY_LOYALTY, Clock, Drive
from tests.chaos.stack import STRIPE_WEBHOOK_SECRET, ChaosStack
from tests.concurrency import race
from tests.factories.accounts import UserFactory
from tests.stripe_signing import sign, stripe_event
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
SUBSCRIBERS = 8
BURST = 4  # same-second events per subscriber and phase
DUPLICATES = 2
# Stripe's status per phase, per subscriber (cycled): the last phase decides who is owed a code.
PHASES = [["active", "past_due"], ["past_due", "active"], ["past_due", "past_due"], ["active", "active"]]


def _object(sub_id: str, customer: str, user_id: int, status: str, start: int) -> dict:
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "start_date": start,
        "items": {
            "object": "list",
            "data": [{"id": f"si_{sub_id}", "price": {"id": "price_pro", "lookup_key": "pro"}}],
        },
        "metadata": {"user_id": str(user_id)},
    }


def _deliver(site_url: str, event: dict):
    def post() -> int:
        payload = json.dumps(event).encode()
        headers = {"Stripe-Signature": sign(payload, secret=STRIPE_WEBHOOK_SECRET), "Content-Type": "application/json"}
        return httpx.post(f"{site_url}/api/stripe/webhook/", content=payload, headers=headers, timeout=60).status_code

    return post


def _set_at_stripe(stack: ChaosStack, sub_id: str, **state: object) -> None:
    response = stack.standins["stripe"].post(f"/__stripe__/subscriptions/{sub_id}", state)
    assert response.status_code == 200, response.text


def _mirror_problems(stack: ChaosStack) -> list[str]:
    close_old_connections()
    at_stripe = {s["id"]: s["status"] for s in stack.standins["stripe"].state()["subscriptions"]}
    mirrored = dict(Subscription.objects.values_list("stripe_subscription_id", "status"))
    return [
        f"{sub}: Stripe {status}, mirror {mirrored.get(sub)}"
        for sub, status in at_stripe.items()
        if mirrored.get(sub) != status
    ]


def _deliver_all(stack: ChaosStack, events: list[dict], rng: random.Random) -> Counter:
    deliveries = [event for event in events for _ in range(DUPLICATES)]
    rng.shuffle(deliveries)
    outcomes = race([_deliver(stack.site_url, e) for e in deliveries])
    assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes if not o.ok][:5]
    return Counter(o.result for o in outcomes)


def test_loyalty_same_second_subscription_events_mirror_stripe_and_grant_only_the_active(
    stack: ChaosStack, chaos_long: bool
) -> None:
    rng = random.Random(14)
    start = int(add_months(timezone.now(), -13).timestamp())
    subscribers = []
    created = []
    for n in range(SUBSCRIBERS):
        user, sub_id, customer = UserFactory(), f"sub_chaos_{n}", f"cus_chaos_{n}"
        subscribers.append((user.pk, sub_id, customer, PHASES[n % len(PHASES)]))
        _set_at_stripe(stack, sub_id, customer=customer, metadata={"user_id": str(user.pk)}, start_date=start)
        event = stripe_event(
            f"evt_created_{n}", "customer.subscription.created", _object(sub_id, customer, user.pk, "active", start)
        )
        event["created"] = start
        created.append(event)
    close_old_connections()
    started = time.monotonic()
    statuses = _deliver_all(stack, created, rng)
    total_events = len(created)

    # when: Stripe moves every subscriber, then same-second bursts with stale payloads arrive shuffled
    for phase in range(2):
        burst = []
        second = int(time.time())
        for user_id, sub_id, customer, phases in subscribers:
            _set_at_stripe(stack, sub_id, status=phases[phase])
            for k in range(BURST):
                stale = rng.choice(["active", "past_due", "unpaid"])
                event = stripe_event(
                    f"evt_{phase}_{sub_id}_{k}",
                    "customer.subscription.updated",
                    _object(sub_id, customer, user_id, stale, start),
                )
                event["created"] = second
                burst.append(event)
        statuses += _deliver_all(stack, burst, rng)
        total_events += len(burst)
        # then: every mirror is what Stripe says now, whatever the order and the payloads
        assert not _mirror_problems(stack), _mirror_problems(stack)
    deliver_seconds = time.monotonic() - started

    assert statuses == {200: total_events * DUPLICATES}, statuses
    assert WebhookEvent.objects.filter(provider="stripe").count() == total_events

    # and the beat's apply_loyalty grants exactly the subscribers active at Stripe, once each
    owed = {sub_id for _, sub_id, _, phases in subscribers if phases[-1] == "active"}
    applied = LoyaltyDiscount.objects.filter(status=DiscountStatus.APPLIED)
    drive = Drive(stack, Clock(enabled=not chaos_long), ticks=[APPLY_LOYALTY])
    drive.until(lambda: applied.count() == len(owed) and stack.broker_idle(), timeout=300, what="the grants")
    stack.send_task(APPLY_LOYALTY)  # one more tick: nothing more may come of it
    drive.until(stack.broker_idle, timeout=120, what="the last tick")
    close_old_connections()

    granted = set(applied.values_list("subscription__stripe_subscription_id", flat=True))
    assert granted == owed and LoyaltyDiscount.objects.count() == len(owed)
    codes = Counter(p["customer"] for p in stack.standins["stripe"].state()["promotion_codes"])
    assert set(codes) == {customer for _, sub_id, customer, _ in subscribers if sub_id in owed}
    assert max(codes.values()) == 1, codes
    SUMMARY.add(
        f"loyalty-subscription-order: {SUBSCRIBERS} subscribers, 2 moves at Stripe each followed by {BURST} "
        f"same-second events with stale payloads; {total_events} events x {DUPLICATES} deliveries shuffled and "
        f"concurrent over HTTP in {deliver_seconds:.1f} s, each processed once; every mirror = Stripe after "
        f"each phase; {len(owed)} active subscribers -> {sum(codes.values())} codes, "
        f"{SUBSCRIBERS - len(owed)} past due -> 0: 0 duplicates",
        key=6,
    )
