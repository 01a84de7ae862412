"""Backfill for the seed incident: customers who hold more than one active anniversary code.

    python manage.py revoke_duplicate_loyalty_codes [--dry-run]

1. Find: every active code of the loyalty coupon at Stripe (listed by coupon, paged), plus, for
   customers with more than one code in our database, their active codes listed by customer (a
   code our rows hold may have been made under another coupon).
2. Group by customer and anniversary (the code's metadata, else the row that holds it). In every
   group of two or more, keep the earliest code that our database has not revoked; the rest are
   duplicates.
3. Resolve, per group: one transaction revokes the live rows that hold a duplicate (guarded
   transition, audited) and, if no live row holds the kept code, records it as the applied row
   (its email claim completed: the customer was mailed at the time). Then, outside the
   transaction, each duplicate is deactivated at Stripe with the stable key
   `loyalty:deactivate:<id>`. A crash in between is repaired by a second run (the code is still
   active, so still a duplicate) and by the apply_loyalty tick's sweep of revoked rows.
A second run finds no group of two active codes and changes nothing.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from audit.transitions import apply_transition
from core.actors import Actor
from core.claims import claim, complete
from core.errors import DomainError
from core.transactions import atomic
from loyalty.clients.stripe import StripeError, StripePromotionCode, stripe_client
from loyalty.keys import email_claim_key
from loyalty.models import LIVE_STATUSES, DiscountStatus, LoyaltyDiscount
from loyalty.services.revocations import revoke_without_closing
from loyalty.services.stripe_codes import deactivate_promotion_code

IN_CHUNK = 1000
REASON = "duplicate anniversary code (revoke_duplicate_loyalty_codes)"


@dataclass
class DuplicateGroup:
    customer: str
    anniversary: str
    keep: StripePromotionCode | None
    duplicates: list[StripePromotionCode]


@dataclass
class BackfillReport:
    codes_scanned: int = 0
    customers_with_duplicates: int = 0
    groups: int = 0
    codes_kept: int = 0
    codes_deactivated: int = 0
    rows_revoked: int = 0
    rows_recorded: int = 0
    errors: list[str] = field(default_factory=list)


def revoke_duplicate_loyalty_codes(
    *,
    actor: Actor,
    dry_run: bool = False,
    on_groups: Callable[[list[DuplicateGroup]], Iterable[DuplicateGroup]] = iter,
) -> BackfillReport:
    """on_groups wraps the iteration over the groups found (the command passes a progress bar)."""
    report = BackfillReport()
    groups = find_duplicate_groups(report)
    report.groups = len(groups)
    report.customers_with_duplicates = len({g.customer for g in groups})
    for group in on_groups(groups):
        report.codes_kept += group.keep is not None
        if dry_run:
            report.codes_deactivated += len(group.duplicates)
            continue
        _resolve(group, actor, report)
    return report


def find_duplicate_groups(report: BackfillReport) -> list[DuplicateGroup]:
    """Read-only: Stripe's active loyalty codes and our rows, grouped by customer and anniversary."""
    codes = _active_loyalty_codes()
    report.codes_scanned = len(codes)
    rows = _rows_by_code_id(codes)
    grouped: dict[tuple[str, str], list[StripePromotionCode]] = defaultdict(list)
    for code in codes.values():
        holder = rows.get(code.id)
        anniversary = code.metadata.get("anniversary") or (str(holder.anniversary) if holder else "?")
        grouped[(code.customer or "", anniversary)].append(code)
    groups = []
    for (customer, anniversary), members in sorted(grouped.items()):
        if len(members) < 2:
            continue
        members.sort(key=lambda c: (c.created, c.id))
        keepable = [c for c in members if not (rows.get(c.id) and rows[c.id].status == DiscountStatus.REVOKED)]
        keep = keepable[0] if keepable else None
        groups.append(DuplicateGroup(customer, anniversary, keep, [c for c in members if c is not keep]))
    return groups


def _active_loyalty_codes() -> dict[str, StripePromotionCode]:
    client = stripe_client()
    codes = {c.id: c for c in client.list_promotion_codes(coupon=settings.LOYALTY_COUPON_ID, active=True)}
    held = LoyaltyDiscount.objects.exclude(stripe_promotion_code_id="")
    customers = (
        held.values("subscription__stripe_customer_id")
        .annotate(rows=Count("id"))
        .filter(rows__gt=1)
        .values_list("subscription__stripe_customer_id", flat=True)
    )
    for customer in customers:
        for code in client.list_promotion_codes(customer=customer, active=True):
            if code.coupon == settings.LOYALTY_COUPON_ID or held.filter(stripe_promotion_code_id=code.id).exists():
                codes[code.id] = code
    return codes


def _rows_by_code_id(codes: dict[str, StripePromotionCode]) -> dict[str, LoyaltyDiscount]:
    ids, rows = list(codes), {}
    for start in range(0, len(ids), IN_CHUNK):
        chunk = LoyaltyDiscount.objects.filter(stripe_promotion_code_id__in=ids[start : start + IN_CHUNK])
        for row in chunk.order_by("pk"):
            # A live row is the one that matters when a code was (wrongly) held by two rows.
            if row.stripe_promotion_code_id not in rows or row.status in LIVE_STATUSES:
                rows[row.stripe_promotion_code_id] = row
    return rows


def _resolve(group: DuplicateGroup, actor: Actor, report: BackfillReport) -> None:
    try:
        with atomic():
            revoked = _revoke_rows_holding(group, actor)
            report.rows_revoked += len(revoked)
            if revoked and group.keep is not None and _record_kept(group.keep, revoked[0], actor):
                report.rows_recorded += 1
    except DomainError as exc:
        report.errors.append(f"{group.customer} year {group.anniversary}: {exc.message}")
        return
    closed_at = timezone.now()
    for code in group.duplicates:
        try:
            deactivate_promotion_code(code.id)
        except StripeError as exc:
            report.errors.append(f"{group.customer} {code.id}: {exc.describe()}")
            continue
        report.codes_deactivated += 1
        LoyaltyDiscount.objects.filter(
            stripe_promotion_code_id=code.id, status=DiscountStatus.REVOKED, stripe_closed_at__isnull=True
        ).update(stripe_closed_at=closed_at)


def _revoke_rows_holding(group: DuplicateGroup, actor: Actor) -> list[LoyaltyDiscount]:
    ids = [c.id for c in group.duplicates]
    rows = LoyaltyDiscount.objects.filter(stripe_promotion_code_id__in=ids, status__in=LIVE_STATUSES).order_by("pk")
    revoked = []
    for row in rows:
        revoke_without_closing(discount=row, actor=actor, reason=REASON)  # closed below, after commit
        revoked.append(row)
    return revoked


def _record_kept(keep: StripePromotionCode, revoked: LoyaltyDiscount, actor: Actor) -> bool:
    """The customer keeps `keep`; make it the live row of that anniversary if no live row is."""
    live = LoyaltyDiscount.objects.filter(user_id=revoked.user_id, anniversary=revoked.anniversary)
    if live.filter(status__in=LIVE_STATUSES).exists():
        return False
    row = LoyaltyDiscount.objects.create(
        user_id=revoked.user_id,
        subscription_id=revoked.subscription_id,
        anniversary=revoked.anniversary,
        code=keep.code,
        stripe_promotion_code_id=keep.id,
    )
    apply_transition(
        instance=row,
        transition="apply",
        actor=actor,
        reason=f"{REASON}: kept the earliest code",
        changes={"applied_at": timezone.now()},
    )
    # The customer was mailed when the code was made: no second "Loyalty Bonus" email.
    complete(claim(email_claim_key(row.pk)))
    return True
