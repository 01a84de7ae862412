"""The operations whose SQL is pinned: each builder creates its data, then returns the operation to
measure. Shared by tests/proof/test_statement_counts.py (asserts the statements) and
bench/statements.py (prints them), so the bench shows exactly what CI holds the code to.

Steady state is measured, as production sees it: the ContentType cache is warm, and tasks that an
operation enqueues on commit are queued on the (in-memory) broker, not run inline. What a task then
does is its own operation (e.g. the POS push below is the drain task's work for one job).

The data is made with the ORM here, not with the tests' factories, so that bench never imports
tests; the rows are the ones the factories would make (same amounts, rates, states and dates).
"""

import importlib
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from affiliates.models import Affiliate, Commission, CommissionStatus, KycStatus
from affiliates.services import evaluate_tier
from audit.transitions import apply_transition
from config.celery import app as celery_app
from core.actors import SystemActor
from core.errors import Conflict
from core.transactions import atomic
from loyalty.anniversaries import add_months
from loyalty.models import PRO_PLAN, LoyaltyDiscount, Subscription, SubscriptionStatus
from loyalty.services import apply_loyalty
from payouts.models import Payout, PayoutStatus
from payouts.services import approve_payout, reject_payout
from pos_sync.models import Order, OrderStatus, PosConnection, SyncJob, SyncJobStatus
from pos_sync.services import drain_due_jobs

SYSTEM = SystemActor("proof")
SQUARE_SANDBOX_TOKEN = "square-sandbox-token"  # what the Square stand-in accepts by default
_serial = itertools.count(1)


@dataclass(frozen=True)
class Operation:
    name: str
    run: Callable[[], Any]
    expect: type[BaseException] | None = None


@contextmanager
def tasks_queued_not_run() -> Iterator[None]:
    """Production's behaviour for on-commit enqueues (the test settings run tasks eagerly)."""
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = eager


def _warm(*models: type) -> None:
    for model in models:
        ContentType.objects.get_for_model(model)


def _user(username: str | None = None, *, superuser: bool = False) -> Any:
    username = username or f"proof-{'admin' if superuser else 'user'}-{next(_serial)}"
    user, _ = get_user_model().objects.get_or_create(
        username=username,
        defaults={
            "email": f"{username}@example.com",
            "password": make_password("pw"),
            "is_staff": superuser,
            "is_superuser": superuser,
        },
    )
    return user


def _affiliate(*, commission_rate: int = 20) -> Affiliate:
    n = next(_serial)
    return Affiliate.objects.create(
        user=_user(), commission_rate=commission_rate, kyc_status=KycStatus.VERIFIED, wise_recipient_id=f"rcpt-{n}"
    )


def _commission(affiliate: Affiliate, *, amount: Decimal, currency: str, status: str) -> Commission:
    n = next(_serial)
    return Commission.objects.create(
        affiliate=affiliate,
        stripe_invoice_id=f"in_proof_{n:08d}",
        stripe_event_id=f"evt_proof_{n:08d}",
        amount=amount,
        currency=currency,
        rate=20,
        status=status,
    )


def _requested_payout() -> Payout:
    """A requested payout of 310.00 EUR by an affiliate with 1,000.00 EUR of approved commissions."""
    affiliate = _affiliate()
    _commission(affiliate, amount=Decimal("1000.00"), currency="EUR", status=CommissionStatus.APPROVED)
    return Payout.objects.create(
        affiliate=affiliate, amount=Decimal("310.00"), currency="EUR", status=PayoutStatus.REQUESTED
    )


def _due_sync_job() -> SyncJob:
    """A closed order (2 x 12.50 + 1 x 3.00 USD) at a Square location, its push due now."""
    n = next(_serial)
    connection = PosConnection.objects.create(
        restaurant_name=f"Restaurant {n}",
        provider="square",
        location_id=f"LOC{n:04d}",
        access_token=SQUARE_SANDBOX_TOKEN,
    )
    lines = [
        {"name": "Pasta", "quantity": 2, "unit_price": "12.50"},
        {"name": "Water", "quantity": 1, "unit_price": "3.00"},
    ]
    order = Order.objects.create(
        connection=connection,
        table_id=f"T{n}",
        line_items=lines,
        total=sum((Decimal(line["unit_price"]) * line["quantity"] for line in lines), Decimal("0")),
        currency="USD",
        placed_at=timezone.now(),
        status=OrderStatus.CLOSED,
    )
    return SyncJob.objects.create(
        order=order, provider="square", status=SyncJobStatus.PENDING, next_attempt_at=timezone.now()
    )


def _due_subscription() -> Subscription:
    """An active Pro subscription whose first anniversary passed an hour ago."""
    n = next(_serial)
    started = add_months(timezone.now(), -12) - timedelta(hours=1)
    return Subscription.objects.create(
        user=_user(),
        stripe_customer_id=f"cus_proof_{n:08d}",
        stripe_subscription_id=f"sub_proof_{n:08d}",
        plan=PRO_PLAN,
        status=SubscriptionStatus.ACTIVE,
        pro_started_at=started,
        last_event_at=started,
    )


def approve() -> Operation:
    admin = _user(superuser=True)
    payout = _requested_payout()
    _warm(Payout)
    return Operation("approve a payout", lambda: approve_payout(payout_id=payout.pk, actor=admin))


def _approved_by_someone_else() -> tuple[Payout, Any]:
    """A payout that one super-admin approved after another loaded it as requested."""
    kerem, ana = _user("kerem", superuser=True), _user("ana", superuser=True)
    payout = _requested_payout()
    # Loaded as the review services load it: with its affiliate, whose user the authority rule
    # (payouts.authority, the transitions' permission) compares with the reviewer.
    stale = Payout.objects.select_related("affiliate").get(pk=payout.pk)
    with tasks_queued_not_run():
        approve_payout(payout_id=payout.pk, actor=kerem)
    _warm(Payout)
    return stale, ana


def reject_with_conflict() -> Operation:
    stale, ana = _approved_by_someone_else()
    return Operation(
        "reject with conflict (409 naming the winner)",
        lambda: reject_payout(payout_id=stale.pk, actor=ana, reason="duplicate request"),
        expect=Conflict,
    )


def lost_race_unrendered() -> Operation:
    """The helper's lost race when the caller treats it as "someone else did it" (the drain, the
    webhooks): the conflict's details are never read."""
    stale, ana = _approved_by_someone_else()

    def run() -> bool:
        with atomic():
            try:
                apply_transition(instance=stale, transition="reject", actor=ana)
            except Conflict:
                return False
        return True

    return Operation("lost race, details not read", run)


def evaluate_tier_change() -> Operation:
    tiers_migration = importlib.import_module("affiliates.migrations.0003_default_tiers")
    tiers_migration.create_default_tiers(apps, None)  # a transactional test flushed the data migration
    affiliate = _affiliate(commission_rate=20)
    _commission(affiliate, amount=Decimal("2000.00"), currency="USD", status=CommissionStatus.PENDING)
    _warm(Affiliate)
    return Operation(
        "evaluate_tier (promotion)",
        lambda: evaluate_tier(affiliate_id=affiliate.pk, actor=SYSTEM, cause="proof"),
    )


def pos_push() -> Operation:
    """One due job drained: take it (lock, claim, set aside), push it to Square (two HTTP calls,
    no transaction open), record the success with the claim's completion. Needs SQUARE_BASE_URL
    pointing at a Square stand-in."""
    _due_sync_job()
    _warm(SyncJob)
    return Operation("one POS push (drain of one due job)", lambda: drain_due_jobs(batch_size=50))


def loyalty_grant() -> Operation:
    """One beat tick with one subscriber past its anniversary: pre-flight read, the pending row
    inserted under the subscription's row lock, the attempt guard, the promotion code at Stripe
    (HTTP, no transaction open), the guarded pending -> applied, then the tick's two sweeps (codes
    of revoked rows, unsent emails). The email is queued on commit. Needs STRIPE_API_BASE pointing
    at a Stripe stand-in."""
    _due_subscription()
    _warm(LoyaltyDiscount)
    return Operation("one loyalty grant (apply_loyalty tick, one due subscriber)", lambda: apply_loyalty(actor=SYSTEM))


BUILDERS: dict[str, Callable[[], Operation]] = {
    "approve": approve,
    "reject_with_conflict": reject_with_conflict,
    "lost_race_unrendered": lost_race_unrendered,
    "evaluate_tier": evaluate_tier_change,
    "pos_push": pos_push,
    "loyalty_grant": loyalty_grant,
}
