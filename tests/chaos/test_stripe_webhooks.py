"""Scenario 4: Stripe webhooks, 20 events x 5 deliveries each, shuffled and concurrent, to gunicorn.

Stripe delivers at least once and in any order. The deliveries go over HTTP to the 4 gunicorn
workers in waves released together; the tier evaluations they enqueue run on the 2 Celery workers.
Invariants: every event processed once (one WebhookEvent row each), commissions = distinct invoices
(two events for one invoice still make one), tier events = real changes of the rate (per affiliate a
chain from its starting rate to the rate its total earns, no step twice), one audit row per change.
"""

import json
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest
from django.db import close_old_connections
from django.utils import timezone

from affiliates.models import Affiliate, Commission, Tier, TierEvent, TierEventStatus
from affiliates.selectors import affiliates_off_tier, tier_for_total, tiers
from tests.affiliates.events import invoice_paid, subscription_updated
from tests.chaos.conftest import SUMMARY
from tests.chaos.helpers import audit_targets, beacons, ledger_ok, wait_until
from tests.chaos.stack import STRIPE_WEBHOOK_SECRET, ChaosStack
from tests.concurrency import race
from tests.factories.affiliates import AffiliateFactory, ReferralFactory
from tests.stripe_signing import sign
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
DUPLICATES = 5
WAVE = 20  # deliveries released together
TIERS = [("Bronze", 20, Decimal("0.00")), ("Gold", 25, Decimal("1500.00")), ("Platinum", 30, Decimal("3000.00"))]
# Invoices per affiliate, $5,000 each: 20% of it is $1,000, so 2 reach Gold and 3 Platinum.
INVOICES = {"ada": 4, "bo": 4, "cy": 3, "di": 1, "ed": 4}
RESENT = 2  # invoices that Stripe also announces under a second event id


def _events(customers: dict[str, str], scale: int) -> tuple[list[dict], set[str]]:
    events, invoices = [], set()
    for name, count in INVOICES.items():
        for n in range(count * scale):
            invoice = f"in_chaos_{name}_{n}"
            invoices.add(invoice)
            events.append(
                invoice_paid(f"evt_paid_{name}_{n}", invoice_id=invoice, customer=customers[name], amount_paid=500_000)
            )
    for n, invoice in enumerate(sorted(invoices)[: RESENT * scale]):
        name = invoice.split("_")[2]
        events.append(
            invoice_paid(f"evt_resent_{n}", invoice_id=invoice, customer=customers[name], amount_paid=500_000)
        )
    events.append(subscription_updated("evt_sub_ada", customer=customers["ada"]))
    events.append(subscription_updated("evt_sub_di", customer=customers["di"]))
    return events, invoices


def _deliver(site_url: str, event: dict):
    def post() -> tuple[int, dict]:
        payload = json.dumps(event).encode()
        headers = {"Stripe-Signature": sign(payload, secret=STRIPE_WEBHOOK_SECRET), "Content-Type": "application/json"}
        response = httpx.post(f"{site_url}/api/stripe/webhook/", content=payload, headers=headers, timeout=60)
        return response.status_code, response.json()

    return post


def _chain_problems(affiliate: Affiliate, events: list[TierEvent], start_rate: int) -> list[str]:
    """Events (oldest first) must step from the starting rate to the current one, each a change."""
    problems, rate, steps = [], start_rate, set()
    for event in events:
        if event.from_rate != rate or event.to_rate == event.from_rate or (event.from_rate, event.to_rate) in steps:
            problems.append(f"affiliate {affiliate.pk}: {event.from_rate}->{event.to_rate} after rate {rate}")
        steps.add((event.from_rate, event.to_rate))
        rate = event.to_rate
    if rate != affiliate.commission_rate:
        problems.append(f"affiliate {affiliate.pk}: events end at {rate}, rate is {affiliate.commission_rate}")
    return problems


def test_stripe_webhooks_duplicated_shuffled_concurrent(stack: ChaosStack, chaos_long: bool) -> None:
    # given: the tiers, five referring affiliates at 20% and their referred customers
    Tier.objects.all().delete()  # exactly these tiers, whatever an earlier test left
    for name, rate, threshold in TIERS:
        Tier.objects.create(name=name, commission_rate=rate, threshold=threshold)
    affiliates = {name: AffiliateFactory(commission_rate=20) for name in INVOICES}
    customers = {
        name: ReferralFactory(affiliate=a, stripe_customer_id=f"cus_chaos_{name}").stripe_customer_id
        for name, a in affiliates.items()
    }
    scale = 3 if chaos_long else 1
    events, invoices = _events(customers, scale)
    assert chaos_long or len(events) == 20
    deliveries = [event for event in events for _ in range(DUPLICATES)]
    random.Random(4).shuffle(deliveries)
    close_old_connections()

    # when: every delivery, five times each, shuffled, in waves released together
    started = time.monotonic()
    waves = [deliveries[i : i + WAVE] for i in range(0, len(deliveries), WAVE)]
    with ThreadPoolExecutor(max_workers=2) as pool:  # two waves overlap: up to 40 deliveries in flight
        results = [
            o for wave in pool.map(lambda w: race([_deliver(stack.site_url, e) for e in w]), waves) for o in wave
        ]
    deliver_seconds = time.monotonic() - started
    # ... and the tier evaluations they enqueued run on the Celery workers
    wait_until(
        lambda: stack.broker_idle() and not affiliates_off_tier(tiers=tiers(), now=timezone.now()),
        timeout=300,  # generous: it returns as soon as the evaluations are through
        what="the tier evaluations",
        stack=stack,
    )
    time.sleep(0.5)
    wait_until(stack.broker_idle, timeout=300, what="an idle broker", stack=stack)

    # then: every delivery answered 200; each event id processed exactly once
    assert all(o.ok for o in results), [repr(o.error) for o in results if not o.ok][:5]
    statuses = Counter(o.result[0] for o in results)
    assert statuses == {200: len(deliveries)}, statuses
    outcomes = Counter(o.result[1]["outcome"] for o in results)
    assert outcomes["processed"] == len(events) and outcomes["duplicate"] == len(deliveries) - len(events), outcomes
    assert WebhookEvent.objects.filter(provider="stripe").count() == len(events)

    # commissions = distinct invoices
    recorded = Counter(Commission.objects.values_list("stripe_invoice_id", flat=True))
    assert set(recorded) == invoices and max(recorded.values()) == 1, recorded

    # tier events = real changes: a chain from 20% to the rate the total earns, nothing twice
    problems, changes = [], 0
    tier_list = tiers()
    for affiliate in Affiliate.objects.filter(pk__in=[a.pk for a in affiliates.values()]):
        history = list(TierEvent.objects.filter(affiliate=affiliate, status=TierEventStatus.ACTIVE).order_by("id"))
        problems += _chain_problems(affiliate, history, start_rate=20)
        total = sum(Commission.objects.filter(affiliate=affiliate).values_list("amount", flat=True), Decimal("0"))
        earned = tier_for_total(total, tier_list)
        if earned.commission_rate != affiliate.commission_rate:
            problems.append(
                f"affiliate {affiliate.pk}: total {total} earns {earned.name}, rate {affiliate.commission_rate}"
            )
        changes += len(history)
    assert not problems, problems
    assert TierEvent.objects.count() == changes  # nothing superseded or duplicated beside the chains
    rate_changes = audit_targets("affiliates.affiliate")
    assert sum(rate_changes.values()) == changes, rate_changes
    lost = beacons("evaluate_tier_race_lost")

    books = ledger_ok()
    SUMMARY.add(
        f"stripe-webhooks: {len(events)} events x {DUPLICATES} deliveries = {len(deliveries)} shuffled, "
        f"in waves of {WAVE} released together (2 waves in flight) over HTTP in {deliver_seconds:.1f} s; "
        f"{outcomes['processed']} processed, "
        f"{outcomes['duplicate']} duplicates answered 200; {len(recorded)} commissions = {len(invoices)} distinct "
        f"invoices ({RESENT * scale} re-sent under a new event id); {changes} tier events = {changes} real rate "
        f"changes ({lost} evaluation races lost, 0 written); {books}",
        key=4,
    )
