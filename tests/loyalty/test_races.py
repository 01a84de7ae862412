"""apply_loyalty under real contention: PostgreSQL, one connection per thread, a barrier, and the
Stripe stand-in's own record of what it was asked to create."""

import threading
import time
from collections import Counter

import pytest
from django.core import mail
from django.db import transaction
from django.test import Client
from django.utils import timezone

from audit.models import AuditEntry
from core.actors import SystemActor
from core.models import Claim
from loyalty.models import DiscountStatus, LoyaltyDiscount, Subscription
from loyalty.services import SubscriptionSnapshot, apply_loyalty, sync_subscription, take_read_ticket
from tests.concurrency import race, wait_for_a_lock_waiter
from tests.factories.accounts import UserFactory
from tests.factories.loyalty import SubscriptionFactory
from tests.stripe_signing import post_stripe_event, stripe_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RUNS = 6
SUBSCRIBERS = 200
ROUNDS = 2


def _tick(number: int) -> dict[str, int]:
    return apply_loyalty(actor=SystemActor(f"task:apply_loyalty:{number}")).as_dict()


def test_six_concurrent_runs_over_200_subscribers_grant_each_anniversary_once(stripe_standin, settings):
    settings.LOYALTY_BATCH_SIZE = 50  # four keyset batches per run
    for round_no in range(ROUNDS):
        # given 200 Pro subscribers whose first anniversary is due
        stripe_standin.reset()
        mail.outbox.clear()
        LoyaltyDiscount.objects.all().delete()
        Subscription.objects.all().delete()
        subscriptions = SubscriptionFactory.create_batch(SUBSCRIBERS)
        started = time.monotonic()

        # when six ticks run at the same instant
        outcomes = race([lambda n=n: _tick(n) for n in range(RUNS)])
        elapsed = time.monotonic() - started

        # then every tick finished, and between them they created each row exactly once
        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes if not o.ok]
        reports = [o.result for o in outcomes]
        assert sum(r["created"] for r in reports) == SUBSCRIBERS
        assert sum(r["created"] + r["already_processed"] + r["already_granted"] for r in reports) == RUNS * SUBSCRIBERS
        assert sum(r["applied"] for r in reports) == SUBSCRIBERS
        assert sum(r["failed"] + r["lost"] for r in reports) == 0

        # Stripe's own record: 200 codes, one per customer, each from one request with its own key
        codes = list(stripe_standin.promotion_codes.values())
        assert len(codes) == SUBSCRIBERS
        assert {c["customer"] for c in codes} == {s.stripe_customer_id for s in subscriptions}
        assert len({c["code"] for c in codes}) == SUBSCRIBERS
        creates = stripe_standin.requests_to("POST", r"^/v1/promotion_codes$")
        keys = [r.headers["Idempotency-Key"] for r in creates]
        assert len(keys) == SUBSCRIBERS and len(set(keys)) == SUBSCRIBERS

        # our rows: 200 applied, each holding the code Stripe made for it, one audit row each
        applied = LoyaltyDiscount.objects.filter(status=DiscountStatus.APPLIED)
        assert applied.count() == SUBSCRIBERS == LoyaltyDiscount.objects.count()
        assert set(applied.values_list("stripe_promotion_code_id", flat=True)) == {c["id"] for c in codes}
        assert AuditEntry.objects.filter(target=DiscountStatus.APPLIED).count() == SUBSCRIBERS * (round_no + 1)

        # 200 emails, one per subscriber, each claim completed once
        recipients = Counter(m.to[0] for m in mail.outbox)
        assert len(mail.outbox) == SUBSCRIBERS
        assert set(recipients) == {s.user.email for s in subscriptions} and max(recipients.values()) == 1
        assert Claim.objects.filter(key__startswith="loyalty:email:", completed_at__isnull=False).count() == (
            SUBSCRIBERS * (round_no + 1)
        )
        print(f"round {round_no}: {RUNS} runs x {SUBSCRIBERS} subscribers in {elapsed:.2f}s, reports={reports}")


def test_cancellation_racing_the_grant_leaves_no_usable_code(stripe_standin):
    """The deleted webhook lands before, during or after the tick's Stripe call: whichever commits
    first, no discount stays live and no code made for it stays usable at Stripe."""
    # Every code creation takes 0.3 s at Stripe, so the webhook (whose read of the subscription is
    # quick) can land mid-call.
    stripe_standin.execution_delay = 0.3
    offsets = [0.0, 0.1, 0.2, 0.3, 0.45, 0.6, 0.9, 1.2]
    paths = Counter()
    for round_no, offset in enumerate(offsets):
        user = UserFactory()
        subscription = SubscriptionFactory(user=user)
        stripe_standin.set_subscription(  # what the webhook's read finds at Stripe
            subscription.stripe_subscription_id,
            customer=subscription.stripe_customer_id,
            status="canceled",
            metadata={"user_id": str(user.pk), "plan": "pro"},
        )
        deleted = stripe_event(
            f"evt_del_{round_no}",
            "customer.subscription.deleted",
            {
                "id": subscription.stripe_subscription_id,
                "object": "subscription",
                "customer": subscription.stripe_customer_id,
                "status": "canceled",
                "start_date": int(subscription.pro_started_at.timestamp()),
                "metadata": {"user_id": str(user.pk), "plan": "pro"},
            },
        )

        def cancel(event: dict = deleted, offset: float = offset) -> int:
            time.sleep(offset)
            return post_stripe_event(Client(), event).status_code

        outcomes = race([lambda n=round_no: _tick(n), cancel])

        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes if not o.ok]
        assert outcomes[1].result == 200
        made = [c for c in stripe_standin.promotion_codes.values() if c["customer"] == subscription.stripe_customer_id]
        assert len(made) <= 1, f"round {round_no}"
        assert not any(c["active"] for c in made), f"round {round_no}: a cancelled subscriber's code is still usable"
        discount = LoyaltyDiscount.objects.filter(subscription=subscription).first()
        if discount is None:  # the webhook committed before the tick looked: nothing granted
            assert not made
            paths["cancelled before the grant"] += 1
            continue
        assert discount.status == DiscountStatus.REVOKED, f"round {round_no}"
        assert discount.stripe_closed_at is not None
        paths["revoked mid-call" if outcomes[0].result["lost"] else "revoked after applied"] += 1
    print(dict(paths))
    # The hard interleaving happened: the row was revoked while the tick was at Stripe.
    assert paths["revoked mid-call"] >= 1, dict(paths)


def test_a_cancellation_still_uncommitted_when_the_tick_looks_is_not_granted_past(stripe_standin):
    """The tick's batch query runs while the cancellation's transaction is open (so it still sees
    an active subscription, and the revocation inside that transaction sees no row to revoke). The
    insert's lock on the subscription row makes the tick wait for that commit and see the end."""
    for round_no in range(5):
        subscription = SubscriptionFactory()
        inside, committed = threading.Event(), threading.Event()
        snapshot = SubscriptionSnapshot(
            stripe_subscription_id=subscription.stripe_subscription_id,
            stripe_customer_id=subscription.stripe_customer_id,
            status="canceled",
            plan="pro",
            pro_since=subscription.pro_started_at,
            event_created=timezone.now(),
            read_ticket=take_read_ticket(stripe_subscription_id=subscription.stripe_subscription_id),
            user_id=subscription.user_id,
        )

        def cancel(snapshot: SubscriptionSnapshot = snapshot) -> None:
            with transaction.atomic():
                sync_subscription(snapshot=snapshot, actor=SystemActor("webhook:stripe"))
                inside.set()
                # the tick queries, then waits on the subscription row: commit only once it does
                wait_for_a_lock_waiter()
            committed.set()

        def tick_during(n: int = round_no) -> dict[str, int]:
            assert inside.wait(180)
            return _tick(n)

        outcomes = race([cancel, tick_during])

        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes if not o.ok]
        assert outcomes[1].result["scanned"] == 1, "the tick must have looked before the commit"
        assert outcomes[1].result["no_longer_active"] == 1 and outcomes[1].result["created"] == 0
        assert not LoyaltyDiscount.objects.filter(subscription=subscription).exists()
        assert not any(
            c["customer"] == subscription.stripe_customer_id for c in stripe_standin.promotion_codes.values()
        )
