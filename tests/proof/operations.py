"""The operations whose SQL is pinned: each builder creates its data, then returns the operation to
measure. Shared by tests/proof/test_statement_counts.py (asserts the statements) and
bench/statements.py (prints them), so the bench shows exactly what CI holds the code to.

Steady state is measured, as production sees it: the ContentType cache is warm, and tasks that an
operation enqueues on commit are queued on the (in-memory) broker, not run inline. What a task then
does is its own operation (e.g. the POS push below is the drain task's work for one job).
"""

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType

from affiliates.models import Affiliate
from affiliates.services import evaluate_tier
from audit.transitions import apply_transition
from config.celery import app as celery_app
from core.actors import SystemActor
from core.errors import Conflict
from core.transactions import atomic
from loyalty.models import LoyaltyDiscount
from loyalty.services import apply_loyalty
from payouts.models import Payout
from payouts.services import approve_payout, reject_payout
from pos_sync.models import SyncJob
from pos_sync.services import drain_due_jobs
from tests.factories.accounts import SuperAdminFactory
from tests.factories.affiliates import AffiliateFactory, CommissionFactory
from tests.factories.loyalty import SubscriptionFactory
from tests.factories.payouts import PayoutFactory, funded_affiliate
from tests.factories.pos_sync import SyncJobFactory

SYSTEM = SystemActor("proof")


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


def approve() -> Operation:
    admin = SuperAdminFactory()
    payout = PayoutFactory(affiliate=funded_affiliate())
    _warm(Payout)
    return Operation("approve a payout", lambda: approve_payout(payout_id=payout.pk, actor=admin))


def _approved_by_someone_else() -> tuple[Payout, Any]:
    """A payout that one super-admin approved after another loaded it as requested."""
    kerem, ana = SuperAdminFactory(username="kerem"), SuperAdminFactory(username="ana")
    payout = PayoutFactory(affiliate=funded_affiliate())
    stale = Payout.objects.get(pk=payout.pk)
    with tasks_queued_not_run():
        approve_payout(payout_id=payout.pk, actor=kerem)
    _warm(Payout)
    return stale, ana


def reject_with_conflict() -> Operation:
    stale, ana = _approved_by_someone_else()
    return Operation(
        "reject with conflict (409 naming the winner)",
        lambda: reject_payout(payout_id=stale.pk, actor=ana),
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
    affiliate = AffiliateFactory(commission_rate=20)
    CommissionFactory(affiliate=affiliate, amount=Decimal("2000.00"), currency="USD")
    _warm(Affiliate)
    return Operation(
        "evaluate_tier (promotion)",
        lambda: evaluate_tier(affiliate_id=affiliate.pk, actor=SYSTEM, cause="proof"),
    )


def pos_push() -> Operation:
    """One due job drained: take it (lock, claim, set aside), push it to Square (two HTTP calls,
    no transaction open), record the success with the claim's completion. Needs SQUARE_BASE_URL
    pointing at a Square stand-in."""
    SyncJobFactory()
    _warm(SyncJob)
    return Operation("one POS push (drain of one due job)", lambda: drain_due_jobs(batch_size=50))


def loyalty_grant() -> Operation:
    """One beat tick with one subscriber past its anniversary: pre-flight read, the pending row
    inserted under the subscription's row lock, the attempt guard, the promotion code at Stripe
    (HTTP, no transaction open), the guarded pending -> applied, then the tick's two sweeps (codes
    of revoked rows, unsent emails). The email is queued on commit. Needs STRIPE_API_BASE pointing
    at a Stripe stand-in."""
    SubscriptionFactory()
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
