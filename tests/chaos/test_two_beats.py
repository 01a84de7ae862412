"""Scenario 5: two beat schedulers running at once, for 3 minutes of ticks on an accelerated clock.

docs/ARCHITECTURE.md says to run one beat, and to write every periodic task so that two concurrent ticks are
harmless. Here two scheduler processes (tests/chaos/beat.py) tick at the same instants; each tick
publishes one periodic task, in turn pos_sync.tasks.push_pending_orders (Square orders and
payments) and loyalty.tasks.apply_loyalty (Stripe promotion codes and the "Loyalty Bonus" email).
So at every tick both Celery workers run the same task against the same work. The clock is
compressed 10x: 72 ticks 0.25 s apart stand for 3 minutes ticked every 2.5 s, i.e. each task every
5 s, 12 times the real push cadence (1 min) and 360 times the loyalty one (30 min). While they tick,
the test keeps closing orders and making subscriptions reach their anniversary (first and second),
so the ticks race over fresh work. --chaos-long ticks for 3 real minutes: 180 ticks 1 s apart.
Invariants, from the stand-ins' own records AND our database: one Square order and one payment per
order, one Stripe promotion code per user and anniversary, one email per code; and the figures of how
often the two ticks really collided (grants that lost the insert race, POS jobs found claimed).
"""

import json
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import close_old_connections
from django.utils import timezone

from loyalty.anniversaries import add_months
from loyalty.models import DiscountStatus, LoyaltyDiscount
from pos_sync.keys import square_reference_id
from pos_sync.models import SyncJob, SyncJobStatus
from tests.chaos.conftest import SUMMARY
from tests.chaos.helpers import APPLY_LOYALTY, PUSH_ORDERS, audit_targets, ledger_ok, wait_until
from tests.chaos.stack import ChaosStack
from tests.factories.loyalty import SubscriptionFactory
from tests.factories.pos_sync import PosConnectionFactory, SyncJobFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
SCHEDULERS = ("beat-a", "beat-b")


def _due_subscription(years: int):
    """An active Pro subscription whose `years`-th anniversary passed an hour ago."""
    return SubscriptionFactory(pro_started_at=add_months(timezone.now(), -12 * years) - timedelta(hours=1))


def _feed(connections: list, n: int) -> tuple[list[SyncJob], list]:
    jobs = [SyncJobFactory(order__connection=connections[i % len(connections)]) for i in range(n)]
    subscriptions = [_due_subscription(1 + i % 2) for i in range(n)]
    return jobs, subscriptions


def test_two_beats_push_and_grant_exactly_once(stack: ChaosStack, chaos_long: bool) -> None:
    # given: work already due when the schedulers start
    every, ticks = (1.0, 180) if chaos_long else (0.25, 72)
    per_feed = 4
    connections = [PosConnectionFactory() for _ in range(3)]
    jobs, subscriptions = _feed(connections, 10)
    close_old_connections()

    # when: two schedulers tick together, and work keeps arriving until shortly before the end
    start = time.time() + 2.0  # both processes are up and publishing by then
    beats = [
        stack.start_beat(name, start=start, every=every, ticks=ticks, tasks=[PUSH_ORDERS, APPLY_LOYALTY])
        for name in SCHEDULERS
    ]
    feeds, slowest_feed = 0, 0.0
    # A feed starts only if it should end before the last 8 ticks (judged by the slowest feed so
    # far): on a busy machine it feeds less, but never work that no tick is left to take.
    while time.time() + 1.0 + slowest_feed < start + every * (ticks - 8):
        time.sleep(1.0)
        began = time.monotonic()
        more_jobs, more_subscriptions = _feed(connections, per_feed)
        slowest_feed = max(slowest_feed, time.monotonic() - began)
        jobs += more_jobs
        subscriptions += more_subscriptions
        feeds += 1
    close_old_connections()
    for beat in beats:
        beat.process.wait(timeout=every * ticks + 120)  # only a beat that never finishes waits it out
        assert beat.process.returncode == 0, beat.tail()
    sent = [json.loads(beat.log().strip().splitlines()[-1]) for beat in beats]
    job_ids = [j.pk for j in jobs]
    wait_until(
        lambda: (
            stack.broker_idle()
            and SyncJob.objects.filter(pk__in=job_ids, status=SyncJobStatus.SUCCESS).count() == len(jobs)
            and LoyaltyDiscount.objects.filter(status=DiscountStatus.APPLIED).count() == len(subscriptions)
            and len(stack.mails()) >= len(subscriptions)
        ),
        timeout=300,
        what="the last ticks' pushes, codes and emails",
        stack=stack,
    )
    time.sleep(1.0)  # anything still doubling would show up now
    wait_until(stack.broker_idle, timeout=300, what="an idle broker", stack=stack)

    # then, at Square: one order per our order (reference_id), one payment on each
    square_state = stack.standins["square"].state()
    order_ids = {square_reference_id(j.order_id) for j in jobs}
    orders = Counter(o["reference_id"] for o in square_state["orders"])
    assert set(orders) == order_ids and set(orders.values()) == {1}, orders
    payments = Counter(p["order_id"] for p in square_state["payments"])
    assert set(payments) == {o["id"] for o in square_state["orders"]} and set(payments.values()) == {1}, payments
    pushed = dict(SyncJob.objects.filter(pk__in=job_ids).values_list("provider_order_id", "provider_payment_id"))
    assert pushed == {p["order_id"]: p["id"] for p in square_state["payments"]}
    assert audit_targets("pos_sync.syncjob") == {"success": len(jobs)}

    # at Stripe: one promotion code per user and anniversary, the one our row names
    stripe_state = stack.standins["stripe"].state()
    codes = Counter(p["code"] for p in stripe_state["promotion_codes"])
    discounts = list(LoyaltyDiscount.objects.select_related("user", "subscription"))
    assert len(discounts) == len(subscriptions)
    assert Counter((d.user_id, d.anniversary) for d in discounts).most_common(1)[0][1] == 1
    assert set(codes) == {d.code for d in discounts} and set(codes.values()) == {1}, codes
    by_id = {p["id"]: p for p in stripe_state["promotion_codes"]}
    for discount in discounts:
        promotion_code = by_id[discount.stripe_promotion_code_id]
        assert promotion_code["code"] == discount.code
        assert promotion_code["customer"] == discount.subscription.stripe_customer_id
        assert promotion_code["metadata"]["loyalty_discount_id"] == str(discount.pk)

    # one email per code, to its owner, naming it
    mailed = sorted((m["to"][0], _code_in(m["body"], discounts)) for m in stack.mails())
    assert mailed == sorted((d.user.email, d.code) for d in discounts)

    creates = {
        "square": len(stack.standins["square"].requests("POST", r"^/v2/orders$")),
        "stripe": len(stack.standins["stripe"].requests("POST", r"^/v1/promotion_codes$")),
    }
    # how often the two schedulers' ticks really collided on the same work
    loyalty_runs = stack.task_results(APPLY_LOYALTY)
    push_runs = stack.task_results(PUSH_ORDERS)
    insert_lost = sum(r["already_processed"] for r in loyalty_runs)
    claimed_elsewhere = sum(r["selected"] - r["taken"] for r in push_runs)
    pushing_ticks = sum(1 for r in push_runs if r["taken"])
    assert sum(r["created"] for r in loyalty_runs) == len(discounts)
    assert sum(r["succeeded"] for r in push_runs) == len(jobs)
    per_task = Counter()
    for report in sent:
        per_task.update(report["sent"])
    books = ledger_ok()
    SUMMARY.add(
        f"two-beats: {len(SCHEDULERS)} schedulers x {ticks} aligned ticks ({every} s apart"
        f"{', 3 real minutes' if chaos_long else ', 3 min at 2.5 s ticks compressed 10x'}) = "
        f"{per_task[PUSH_ORDERS]} push + {per_task[APPLY_LOYALTY]} loyalty ticks, work fed {feeds + 1}x; "
        f"{len(jobs)} orders -> {len(orders)} Square orders, {sum(payments.values())} payments "
        f"({creates['square']} CreateOrder calls); {len(discounts)} anniversaries -> {len(codes)} Stripe codes "
        f"({creates['stripe']} create calls), {len(mailed)} emails: each exactly once; collisions: "
        f"{insert_lost} grants lost the insert race to the other tick, {claimed_elsewhere} POS jobs found claimed "
        f"(skip_locked gives concurrent drains disjoint jobs; {pushing_ticks} of {len(push_runs)} push ticks took "
        f"work); {books}",
        key=5,
    )


def _code_in(body: str, discounts: list[LoyaltyDiscount]) -> str:
    found = [d.code for d in discounts if d.code in body]
    assert len(found) == 1, body
    return found[0]
