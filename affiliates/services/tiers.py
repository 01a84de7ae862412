"""Tier evaluation with optimistic concurrency: read, decide, then one conditional UPDATE.

The seed incident: two evaluations both read Bronze, both computed Gold, both wrote, two "Promoted
to Gold" events. Here the write is `filter(pk=, commission_rate=<read>, commission_version=<read>)
.update(commission_rate=<new>)`: under READ COMMITTED the second writer waits for the first, then
re-checks the WHERE against the committed row, matches nothing and writes nothing. Only the
winner records the TierEvent and the audit row, in the same transaction as the rate.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

import structlog
from django.conf import settings
from django.utils import timezone

from affiliates import selectors
from affiliates.models import Affiliate, Tier, TierEvent
from affiliates.task_names import EVALUATE_TIER
from audit.beacons import emit_beacon
from audit.signals import transition_committed
from core.actors import Actor
from core.enqueue import enqueue_on_commit
from core.money import format_money
from core.transactions import atomic

if TYPE_CHECKING:
    from affiliates.selectors import AffiliateWithWindowTotal

logger = structlog.get_logger(__name__)


class EvaluationOutcome(StrEnum):
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    RACE_LOST = "race_lost"


@dataclass(frozen=True)
class TierEvaluation:
    affiliate_id: int
    outcome: EvaluationOutcome
    from_rate: int
    to_rate: int
    window_total: Decimal
    event: TierEvent | None = None


def evaluate_tier(*, affiliate_id: int, actor: Actor, cause: str = "", now: datetime | None = None) -> TierEvaluation:
    """Promote or demote the affiliate to the tier its 90-day commission total earns.

    Safety: race guard (conditional UPDATE on the rate AND the commission_version read with the
    sum, so neither a concurrent evaluation nor one computed from an older sum can write over a
    newer answer). A lost race writes nothing and emits `evaluate_tier_race_lost`: either the
    winner read the same commissions (same version) and wrote this same answer, or the
    commissions changed and that change's own on-commit evaluation (or the hourly sweeper)
    decides from the newer sum. No change needed: nothing is written.
    """
    now = now or timezone.now()
    with atomic():
        affiliate = selectors.affiliate_with_window_total(affiliate_id=affiliate_id, now=now)
        seen_rate, total = affiliate.commission_rate, affiliate.window_total
        target = selectors.tier_for_total(total, selectors.tiers())
        if target is None or target.commission_rate == seen_rate:
            return TierEvaluation(affiliate_id, EvaluationOutcome.UNCHANGED, seen_rate, seen_rate, total)
        won = (
            Affiliate.objects.filter(
                pk=affiliate_id, commission_rate=seen_rate, commission_version=affiliate.commission_version
            ).update(commission_rate=target.commission_rate)
            == 1
        )
        if not won:
            emit_beacon(
                "evaluate_tier_race_lost", affiliate=affiliate_id, from_rate=seen_rate, to_rate=target.commission_rate
            )
            return TierEvaluation(affiliate_id, EvaluationOutcome.RACE_LOST, seen_rate, target.commission_rate, total)
        event = _record_change(affiliate=affiliate, seen_rate=seen_rate, target=target, actor=actor, cause=cause)
    logger.info("tier_changed", affiliate=affiliate_id, from_rate=seen_rate, to_rate=target.commission_rate)
    return TierEvaluation(affiliate_id, EvaluationOutcome.CHANGED, seen_rate, target.commission_rate, total, event)


def _record_change(
    *, affiliate: "AffiliateWithWindowTotal", seen_rate: int, target: Tier, actor: Actor, cause: str
) -> TierEvent:
    """The winner's TierEvent and audit row, inside the transaction that changed the rate."""
    at = timezone.now()
    total_shown = format_money(affiliate.window_total, settings.AFFILIATE_CURRENCY)  # the trail's reason is read
    affiliate.commission_rate = target.commission_rate
    event = TierEvent.objects.create(
        affiliate=affiliate,
        from_rate=seen_rate,
        to_rate=target.commission_rate,
        tier_name=target.name,
        window_total=affiliate.window_total,
        cause=cause[:255],
        created_at=at,
    )
    transition_committed.send(
        sender=Affiliate,
        instance=affiliate,
        field="commission_rate",
        transition="promote" if target.commission_rate > seen_rate else "demote",
        source=str(seen_rate),
        target=str(target.commission_rate),
        actor=actor,
        reason=f"{target.name}: 90-day commissions {total_shown}; {cause}".strip().rstrip(";"),
        at=at,
    )
    return event


def enqueue_tier_evaluation(*, affiliate_id: int, cause: str) -> None:
    """Evaluate after commit, so the evaluation reads the commission this transaction wrote.

    A broker that is down does not turn a committed webhook into a 500 (Stripe would retry into a
    duplicate no-op): core.enqueue beacons it, and the hourly re-evaluation catches it.
    """
    enqueue_on_commit(EVALUATE_TIER, affiliate_id, cause)


def request_tier_evaluation(*, stripe_customer_id: str, cause: str) -> int | None:
    """A referred customer's subscription changed: re-evaluate its referrer's tier after commit."""
    affiliate_id = selectors.referring_affiliate_id(stripe_customer_id=stripe_customer_id)
    if affiliate_id is not None:
        enqueue_tier_evaluation(affiliate_id=affiliate_id, cause=cause)
    return affiliate_id


def reevaluate_changed_affiliates(*, actor: Actor, now: datetime | None = None) -> list[TierEvaluation]:
    """The sweeper behind every on-commit evaluation (a process that dies after commit loses it):
    evaluates every affiliate whose rate disagrees with its 90-day total. Two concurrent ticks are
    harmless: evaluate_tier's conditional UPDATE lets one of them change each rate."""
    now = now or timezone.now()
    stale = selectors.affiliates_off_tier(tiers=selectors.tiers(), now=now)
    return [
        evaluate_tier(affiliate_id=affiliate_id, actor=actor, cause="hourly re-evaluation", now=now)
        for affiliate_id in stale
    ]
