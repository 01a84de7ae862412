"""Scenario 3: providers that time out after committing, answer 500 (before or after doing the work),
or drop the connection (before or after doing the work): no duplicate external object.

Every fault mode of the stand-ins is injected on every create call that moves money or makes an
external object: Wise's create-transfer and funding, Square's CreateOrder and CreatePayment, and
Stripe's create-promotion-code. The work flows as in production: approvals over HTTP (gunicorn)
dispatch on the Celery workers; beat ticks (sent by the test) sweep stuck payouts, drain the POS
queue and grant loyalty codes. Recovery waits on clocks: a failed POS job backs off 30-60 s, a
funding whose outcome is unknown keeps its claim for its 2 min lease, a failed grant is resumed
after 10 min. The default run moves those clocks forward once the broker is idle (nothing running
or waiting to retry); --chaos-long waits them out for real, with three times the work and faults.
Invariants, from the stand-ins' own records AND our database: every injected fault was hit; one
transfer and one funding per payout; one order and one payment per POS order; one promotion code
per loyalty anniversary, and one email; each recorded on our side.
"""

import time
from collections import Counter
from decimal import Decimal

import pytest
from django.db import close_old_connections

from loyalty.models import DiscountStatus, LoyaltyDiscount
from payouts.keys import wise_transaction_id
from payouts.models import Payout
from pos_sync.keys import square_reference_id
from pos_sync.models import SyncJob, SyncJobStatus
from tests.chaos.conftest import SUMMARY
from tests.chaos.helpers import (
    APPLY_LOYALTY,
    LOYALTY_RESUME,
    PAYOUT_LEASES,
    POS_LEASES,
    PUSH_ORDERS,
    SWEEP_PAYOUTS,
    Clock,
    Drive,
    ledger_ok,
    reviewer_tokens,
)
from tests.chaos.stack import PROVIDER_TIMEOUT_SECONDS, ChaosStack
from tests.concurrency import race
from tests.factories.loyalty import SubscriptionFactory
from tests.factories.payouts import PayoutFactory, funded_affiliate
from tests.factories.pos_sync import SyncJobFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
MODES = ["timeout_after_commit", "error_500", "error_500_after_commit", "drop_connection", "drop_after_commit"]
CALLS = {
    "wise": {"create transfer": r"^/v1/transfers$", "funding": r"^/v3/profiles/[^/]+/transfers/\d+/payments$"},
    "square": {"CreateOrder": r"^/v2/orders$", "CreatePayment": r"^/v2/payments$"},
    "stripe": {"create promotion code": r"^/v1/promotion_codes$"},
}
LATE_BY = PROVIDER_TIMEOUT_SECONDS + 3.0  # "timeout_after_commit" answers after this, when the clients gave up


def _inject(stack: ChaosStack, rounds: int) -> dict[str, int]:
    injected = Counter()
    for _ in range(rounds):
        for provider, calls in CALLS.items():
            for path in calls.values():
                for mode in MODES:
                    stack.standins[provider].fault("POST", path, mode, delay=LATE_BY)
                    injected[provider] += 1
    return injected


def _approve_all(stack: ChaosStack, token: str, payouts: list[Payout]) -> None:
    with stack.api(token) as client:
        outcomes = race(
            [lambda p=p: client.post(f"/api/payouts/{p.pk}/approve/", json={}).status_code for p in payouts]
        )
    assert [o.result for o in outcomes] == [200] * len(payouts), [o.result or repr(o.error) for o in outcomes]


def _creates(stack: ChaosStack) -> int:
    return sum(
        len(stack.standins[provider].requests("POST", path))
        for provider, calls in CALLS.items()
        for path in calls.values()
    )


def test_provider_faults_make_no_duplicate(stack: ChaosStack, chaos_long: bool) -> None:
    # given: payouts to approve, closed orders queued for Square, anniversaries due; every fault armed once
    rounds = 3 if chaos_long else 1
    count = 8 * rounds
    tokens = reviewer_tokens("kerem")
    payouts = [
        PayoutFactory(affiliate=funded_affiliate(Decimal("500.00")), amount=Decimal("25.00")) for _ in range(count)
    ]
    jobs = [SyncJobFactory() for _ in range(count)]
    subscriptions = [SubscriptionFactory() for _ in range(count)]
    injected = _inject(stack, rounds)
    close_old_connections()
    clock = Clock(enabled=not chaos_long)
    drive = Drive(
        stack,
        clock,
        ticks=[SWEEP_PAYOUTS, PUSH_ORDERS, APPLY_LOYALTY],
        clock_moves=[PAYOUT_LEASES, POS_LEASES, LOYALTY_RESUME],
    )
    started = time.monotonic()

    # when: the approvals race in over HTTP, and the beat ticks until everything is through
    _approve_all(stack, tokens["kerem"], payouts)
    payout_ids, job_ids = [p.pk for p in payouts], [j.pk for j in jobs]
    drive.until(
        lambda: (
            Payout.objects.filter(pk__in=payout_ids, wise_funded_at__isnull=False).count() == count
            and SyncJob.objects.filter(pk__in=job_ids, status=SyncJobStatus.SUCCESS).count() == count
            and LoyaltyDiscount.objects.filter(status=DiscountStatus.APPLIED).count() == count
            and len(stack.mails()) >= count
        ),
        timeout=1500 if chaos_long else 600,  # generous: it returns as soon as everything is through
        what="every payout funded, every order pushed and every code granted through the faults",
    )
    seconds = time.monotonic() - started

    # then: every injected fault was really hit
    for provider, armed in injected.items():
        hit = Counter(r["fault"] for r in stack.standins[provider].requests() if r["fault"])
        assert sum(hit.values()) == armed, (provider, hit)

    # Wise: one transfer per payout (its customerTransactionId), each funded once, recorded on our side
    wise_state = stack.standins["wise"].state()
    transfers = Counter(t["customerTransactionId"] for t in wise_state["transfers"])
    assert transfers == {wise_transaction_id(payout_id=pid, attempt=1): 1 for pid in payout_ids}, transfers
    fundings = Counter(f["transferId"] for f in wise_state["fundings"])
    assert set(fundings) == {t["id"] for t in wise_state["transfers"]} and set(fundings.values()) == {1}, fundings
    recorded = set(Payout.objects.filter(pk__in=payout_ids).values_list("wise_transfer_id", flat=True))
    assert recorded == {str(t["id"]) for t in wise_state["transfers"]}

    # Square: one order per our order (reference_id) with one payment, recorded on the job
    square_state = stack.standins["square"].state()
    orders = Counter(o["reference_id"] for o in square_state["orders"])
    assert orders == {square_reference_id(j.order_id): 1 for j in jobs}, orders
    payments = Counter(p["order_id"] for p in square_state["payments"])
    assert set(payments) == {o["id"] for o in square_state["orders"]} and set(payments.values()) == {1}, payments
    pushed = dict(SyncJob.objects.filter(pk__in=job_ids).values_list("provider_order_id", "provider_payment_id"))
    assert pushed == {p["order_id"]: p["id"] for p in square_state["payments"]}

    # Stripe: one promotion code per anniversary, the one our row names; one email each
    stripe_state = stack.standins["stripe"].state()
    codes = Counter(p["code"] for p in stripe_state["promotion_codes"])
    discounts = dict(LoyaltyDiscount.objects.values_list("code", "stripe_promotion_code_id"))
    assert len(discounts) == len(subscriptions) and set(codes) == set(discounts) and set(codes.values()) == {1}
    assert {p["code"]: p["id"] for p in stripe_state["promotion_codes"]} == discounts
    mails = Counter(m["to"][0] for m in stack.mails())
    assert mails == {s.user.email: 1 for s in subscriptions}, mails

    objects = len(transfers) + sum(fundings.values()) + len(orders) + sum(payments.values()) + len(codes)
    books = ledger_ok()
    SUMMARY.add(
        f"provider-faults: {sum(injected.values())} faults injected and hit ({', '.join(MODES)} on Wise "
        f"create-transfer and funding, Square CreateOrder and CreatePayment, Stripe create-promotion-code); "
        f"{count} payouts -> {len(transfers)} transfers, {sum(fundings.values())} fundings; {count} orders -> "
        f"{len(orders)} Square orders, {sum(payments.values())} payments; {count} anniversaries -> {len(codes)} "
        f"promotion codes, {sum(mails.values())} emails; {_creates(stack)} create calls made {objects} objects: "
        f"0 duplicates; {drive.ticks_sent} beat ticks sent, clock moved {clock.moves}x "
        f"({'real waits' if chaos_long else 'simulated'}); {seconds:.1f} s; {books}",
        key=3,
    )
