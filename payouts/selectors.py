"""Every non-trivial read of payouts."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum
from django.utils import timezone

from affiliates.models import Affiliate
from audit.models import AuditEntry, BeaconCount
from audit.selectors import history_for
from core.currencies import from_minor, normalize
from ledger.models import Account, AccountKind
from payouts.models import Payout, PayoutApproval, PayoutStatus
from payouts.thresholds import approvals_required

if TYPE_CHECKING:
    from django.contrib.auth.models import User

ZERO = Decimal("0.00")
# A payable account's spendable amount in minor units (the ledger's reservation guard, as a read).
AVAILABLE = F("credits_posted") - F("debits_posted") - F("debits_pending")


def available_balance(*, affiliate: Affiliate, currency: str | None = None) -> Decimal:
    """What the affiliate may still request in one currency (default: the program's,
    AFFILIATE_CURRENCY), in major units, read from the books in one query: the payable account's
    credits_posted - debits_posted - debits_pending (earned, less paid out, less held by payouts
    in review or in flight). Negative while a clawback is carried forward. Amounts in two
    currencies never offset: each has its own account.

    A display figure: the reservation's guarded UPDATE in the ledger is what decides a request.
    """
    code = normalize(currency or settings.AFFILIATE_CURRENCY)
    minor = (
        Account.objects.filter(kind=AccountKind.AFFILIATE_PAYABLE, owner_id=str(affiliate.pk), currency=code)
        .values_list(AVAILABLE, flat=True)
        .first()
    )
    return from_minor(minor or 0, code)


def payouts_for(*, affiliate: Affiliate) -> QuerySet[Payout]:
    """One affiliate's payouts, newest first."""
    return Payout.objects.filter(affiliate=affiliate).select_related("reviewed_by").order_by("-created_at", "-id")


def payout_list(*, user: "User", status: str | None = None) -> QuerySet[Payout]:
    """What `user` may see: super-admins all payouts, an affiliate its own, anyone else none."""
    payouts = (
        Payout.objects.select_related("affiliate__user", "requested_by", "reviewed_by")
        .prefetch_related(Prefetch("approvals", queryset=live_approvals_query()))
        .order_by("-created_at", "-id")
    )
    if not user.is_superuser:
        payouts = payouts.filter(affiliate__user=user)
    if status:
        payouts = payouts.filter(status=status)
    return payouts


def pending_payouts() -> QuerySet[Payout]:
    return Payout.objects.filter(status=PayoutStatus.REQUESTED).select_related("affiliate__user").order_by("created_at")


def payouts_to_redispatch(*, now: datetime | None = None) -> QuerySet[Payout]:
    """Approved past the grace period (the on-commit enqueue was lost), or processing without a
    recorded funding (a worker died mid-dispatch). Safe to re-enqueue: dispatch is idempotent."""
    cutoff = (now or timezone.now()) - settings.PAYOUT_DISPATCH_GRACE
    stuck_approved = Q(status=PayoutStatus.APPROVED, reviewed_at__lt=cutoff)
    unfunded = Q(status=PayoutStatus.PROCESSING, wise_funded_at__isnull=True, dispatched_at__lt=cutoff)
    return Payout.objects.filter(stuck_approved | unfunded).order_by("pk")


def payouts_to_poll(*, now: datetime | None = None) -> QuerySet[Payout]:
    """Processing longer than PAYOUT_PROCESSING_POLL_AFTER with a transfer to ask Wise about."""
    cutoff = (now or timezone.now()) - settings.PAYOUT_PROCESSING_POLL_AFTER
    return (
        Payout.objects.filter(status=PayoutStatus.PROCESSING, dispatched_at__lt=cutoff)
        .exclude(wise_transfer_id="")
        .order_by("pk")
    )


def dashboard_figures(*, now: datetime | None = None) -> dict:
    """The admin index widget: pending work, payout transitions, lost races and refusals."""
    now = now or timezone.now()
    pending = pending_payouts().aggregate(count=Count("id"), amount=Sum("amount", default=ZERO))
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    transitions = AuditEntry.objects.filter(content_type=ContentType.objects.get_for_model(Payout)).aggregate(
        today=Count("id", filter=Q(at__gte=start_of_day)),
        last_30_days=Count("id", filter=Q(at__gte=now - timedelta(days=30))),
    )
    beacons = BeaconCount.objects.filter(kind__startswith="payout_", hour__gte=now - timedelta(hours=24))
    outcomes = beacons.aggregate(
        conflicts=Sum("count", filter=Q(kind="payout_race_lost"), default=0),
        refused=Sum("count", filter=Q(kind="payout_transition_refused"), default=0),
        forbidden=Sum("count", filter=Q(kind="payout_transition_forbidden"), default=0),
        all=Sum("count", default=0),
    )
    by_kind = list(beacons.values("kind").annotate(total=Sum("count")).order_by("-total"))
    return {"pending": pending, "transitions": transitions, "outcomes": outcomes, "beacons": by_kind}


# --- dual approval -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalProgress:
    """How far a payout's approval is: `required` (1, or 2 above the threshold) and the approvals
    that count now (live, and about the payout as it is: payouts.services.approvals)."""

    required: int
    approvals: tuple[PayoutApproval, ...]

    @property
    def given(self) -> int:
        return len(self.approvals)

    @property
    def approvers(self) -> list[str]:
        return [approval.approver.get_username() for approval in self.approvals]

    def describe(self) -> str:
        """'1 of 2 approvals (kerem)', or '' for a payout one approval covers and nobody approved yet."""
        if self.required == 1 and not self.approvals:
            return ""
        names = f" ({', '.join(self.approvers)})" if self.approvals else ""
        return f"{self.given} of {self.required} approvals{names}"


def live_approvals_query() -> QuerySet[PayoutApproval]:
    return PayoutApproval.objects.filter(voided_at__isnull=True).select_related("approver").order_by("created_at", "id")


def approval_matches(approval: PayoutApproval, payout: Payout) -> bool:
    """The approval is about the payout as it is now: same attempt, amount, currency, recipient."""
    approved = (approval.attempt, Decimal(approval.amount), approval.currency, approval.wise_recipient_id)
    return approved == (payout.attempt, Decimal(payout.amount), payout.currency, payout.affiliate.wise_recipient_id)


def approval_progress(payout: Payout, approvals: Iterable[PayoutApproval] | None = None) -> ApprovalProgress:
    """`approvals`: the payout's live approvals if already read (default: `payout.approvals`,
    prefetched by payout_list, else one query)."""
    if approvals is None:
        approvals = payout.approvals.all() if _prefetched(payout) else live_approvals_query().filter(payout=payout)
    counted = tuple(a for a in approvals if a.voided_at is None and approval_matches(a, payout))
    return ApprovalProgress(
        required=approvals_required(amount=payout.amount, currency=payout.currency), approvals=counted
    )


def _prefetched(payout: Payout) -> bool:
    return "approvals" in getattr(payout, "_prefetched_objects_cache", {})


@dataclass(frozen=True)
class TrailRow:
    """One line of a payout's trail on its admin page: a transition's audit row, or an approval."""

    at: datetime
    transition: str
    source: str
    target: str
    actor_label: str
    reason: str
    correlation_id: str


def payout_trail(payout: Payout, *, limit: int = 100) -> list[TrailRow]:
    """The audit rows of the payout's transitions and its approvals (void ones included, saying
    why), newest first: every money-relevant change in one list."""
    rows = [
        TrailRow(e.at, e.transition, e.source, e.target, e.actor_label, e.reason, e.correlation_id)
        for e in history_for(payout)[:limit]
    ]
    for approval in PayoutApproval.objects.filter(payout=payout).select_related("approver").order_by("-id")[:limit]:
        what = f"approval (attempt {approval.attempt}, {approval.amount} {approval.currency})"
        if approval.voided_at is not None:
            what += f", void since {approval.voided_at:%Y-%m-%d %H:%M:%S}: {approval.void_reason}"
        status = PayoutStatus.REQUESTED
        rows.append(
            TrailRow(
                approval.created_at,
                what,
                status,
                status,
                approval.approver.get_username(),
                approval.reason,
                approval.correlation_id,
            )
        )
    return sorted(rows, key=lambda row: row.at, reverse=True)[:limit]
