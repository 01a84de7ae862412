"""Every non-trivial read of payouts."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.apps import apps
from django.conf import settings
from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum
from django.utils import timezone

from affiliates.models import Affiliate, Commission, CommissionStatus, KycStatus
from audit.models import FieldChange
from audit.selectors import history_for, last_field_change
from core.admin_links import admin_change_path
from core.currencies import from_minor, normalize
from core.money import format_money
from ledger.models import Account, AccountKind, Transfer, TransferFlag, TransferKind
from ledger.selectors import balance, statement
from payouts.models import Payout, PayoutApproval, PayoutAttempt, PayoutStatus
from payouts.thresholds import approvals_required, single_approval_limit

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
        what = f"approval (attempt {approval.attempt}, {format_money(approval.amount, approval.currency)})"
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


# --- the review page: what a reviewer needs to decide ------------------------------------------


@dataclass(frozen=True)
class AffiliateBalance:
    """The affiliate's money in one currency, in major units, from the books (and the commissions
    not yet in them)."""

    currency: str
    available: Decimal  # what it may still request: earned, less paid out, less held
    held: Decimal  # reserved by payouts in review or being paid (this one included)
    pending_commissions: Decimal  # recorded, not yet approved: not in the books, not payable yet
    account: Account | None  # the payable account (None: nothing was ever booked in this currency)


@dataclass(frozen=True)
class StatementLine:
    """One ledger transfer of the affiliate's payable account, signed from the affiliate's side."""

    at: datetime
    description: str
    reference: str  # what it is for, in words: "Payout #12", "Commission #7"
    object_url: str | None
    amount: Decimal  # its posted effect: + earned, - paid out or taken back; 0 for a hold
    held: Decimal  # its effect on the holds: - reserved, + released or posted
    balance: Decimal  # posted balance after it
    available: Decimal  # what could be requested after it


@dataclass(frozen=True)
class FieldFact:
    """A payee field the decision depends on, with its last recorded change (audit.FieldChange)."""

    label: str
    value: str
    change: FieldChange | None
    old_display: str = ""
    new_display: str = ""


@dataclass(frozen=True)
class CommissionLine:
    commission: Commission
    net: Decimal  # the amount less what refunds and disputes took back
    taken_back: Decimal
    url: str | None


@dataclass(frozen=True)
class CommissionsBehind:
    """The affiliate's payable (approved) and not-yet-payable (pending) commissions in the payout's
    currency, net of what refunds and disputes took back, with their Stripe invoices."""

    lines: list[CommissionLine]
    approved_count: int
    approved_total: Decimal
    pending_count: int
    pending_total: Decimal


@dataclass(frozen=True)
class PayoutReview:
    """Everything the review page shows besides the payout's own fields: read here, rendered there."""

    balance: AffiliateBalance
    statement: list[StatementLine]
    payee: list[FieldFact]
    recipient_changed_since_approval: bool
    commissions: CommissionsBehind
    earlier_payouts: list[Payout]
    earlier_outcomes: dict[str, int]
    approval: ApprovalProgress
    single_approval_limit: Decimal | None
    attempts: list[PayoutAttempt]  # each attempt's Wise transfer, first first


def payout_review(payout: Payout, *, statement_lines: int = 15, earlier: int = 20) -> PayoutReview:
    affiliate, currency = payout.affiliate, payout.currency
    recipient = affiliate.wise_recipient_id
    approved_for = payout.approved_recipient_id
    return PayoutReview(
        balance=affiliate_balance(affiliate=affiliate, currency=currency),
        statement=affiliate_statement(affiliate=affiliate, currency=currency, limit=statement_lines),
        payee=payee_facts(affiliate),
        recipient_changed_since_approval=approved_for is not None and approved_for != recipient,
        commissions=commissions_behind(affiliate=affiliate, currency=currency),
        earlier_payouts=list(earlier_payouts(payout=payout)[:earlier]),
        earlier_outcomes=payout_outcomes(affiliate=affiliate, excluding=payout),
        approval=approval_progress(payout),
        single_approval_limit=single_approval_limit(currency),
        attempts=list(payout.attempts.order_by("number")),
    )


def payable_account_of(*, affiliate: Affiliate, currency: str) -> Account | None:
    return Account.objects.filter(
        kind=AccountKind.AFFILIATE_PAYABLE, owner_id=str(affiliate.pk), currency=normalize(currency)
    ).first()


def affiliate_balance(*, affiliate: Affiliate, currency: str) -> AffiliateBalance:
    account = payable_account_of(affiliate=affiliate, currency=currency)
    sums = balance(account) if account is not None else None
    pending = Commission.objects.filter(
        affiliate=affiliate, currency=currency, status=CommissionStatus.PENDING
    ).aggregate(total=Sum("amount", default=ZERO))["total"]
    return AffiliateBalance(
        currency=currency,
        available=from_minor(sums.available if sums else 0, currency),
        held=from_minor(sums.debits_pending if sums else 0, currency),
        pending_commissions=Decimal(pending),
        account=account,
    )


def affiliate_statement(*, affiliate: Affiliate, currency: str, limit: int = 15) -> list[StatementLine]:
    """The newest `limit` transfers of the affiliate's payable account, newest first, with the
    running balances the ledger computes over the whole account (ledger.selectors.statement: the
    window sums are taken before the ORDER BY and LIMIT, so slicing keeps them right)."""
    account = payable_account_of(affiliate=affiliate, currency=currency)
    if account is None:
        return []
    rows = statement(account).select_related("pending").order_by("-created_at", "-id")[:limit]
    return [_statement_line(transfer, currency) for transfer in rows]


def _statement_line(transfer: Transfer, currency: str) -> StatementLine:
    label, _, pk = transfer.reference.partition(":")

    def major(name: str) -> Decimal:
        return from_minor(int(getattr(transfer, name)), currency)

    return StatementLine(
        at=transfer.created_at,
        description=transfer_description(transfer),
        reference=_reference_label(label, pk) if pk else transfer.reference,
        object_url=admin_change_path(label, pk) if pk else None,
        amount=major("signed_amount"),
        held=major("held"),
        balance=major("running_balance"),
        available=major("running_available"),
    )


def _reference_label(label: str, pk: str) -> str:
    """'payouts.payout', '12' -> 'Payout #12' (the model's own name; the raw label if unknown)."""
    try:
        name = str(apps.get_model(label)._meta.verbose_name)
    except (LookupError, ValueError):
        name = label
    return f"{name[:1].upper()}{name[1:]} #{pk}"


def transfer_description(transfer: Transfer) -> str:
    """'Commission earned', 'Payout: amount held', 'Payout: sent', 'Payout: hold released'."""
    kind = TransferKind(transfer.kind).label if transfer.kind in TransferKind.values else transfer.kind
    if transfer.flag == TransferFlag.PENDING:
        return f"{kind}: amount held"
    if transfer.flag == TransferFlag.POST_PENDING:
        return f"{kind}: sent" if transfer.kind == TransferKind.PAYOUT else f"{kind}: held amount booked"
    if transfer.flag == TransferFlag.VOID_PENDING:
        return f"{kind}: hold released"
    return kind


def payee_facts(affiliate: Affiliate) -> list[FieldFact]:
    """KYC status and Wise recipient, each with when it last changed, from what, and by whom."""
    kyc_labels = dict(KycStatus.choices)
    kyc = last_field_change(affiliate, "kyc_status")
    recipient = last_field_change(affiliate, "wise_recipient_id")
    return [
        FieldFact(
            label="KYC status",
            value=kyc_labels.get(affiliate.kyc_status, affiliate.kyc_status),
            change=kyc,
            old_display=_shown(kyc.old_value if kyc else None, kyc_labels),
            new_display=_shown(kyc.new_value if kyc else None, kyc_labels),
        ),
        FieldFact(
            label="Wise recipient",
            value=affiliate.wise_recipient_id or "none",
            change=recipient,
            old_display=_shown(recipient.old_value if recipient else None),
            new_display=_shown(recipient.new_value if recipient else None),
        ),
    ]


def _shown(value: str | None, labels: dict[str, str] | None = None) -> str:
    if value is None or value == "":
        return "none"
    return (labels or {}).get(value, value)


def commissions_behind(*, affiliate: Affiliate, currency: str, limit: int = 25) -> CommissionsBehind:
    """Approved and pending commissions, newest first (`limit` lines), with totals over all of them."""
    commissions = Commission.objects.filter(
        affiliate=affiliate, currency=currency, status__in=[CommissionStatus.APPROVED, CommissionStatus.PENDING]
    )
    approved, pending = Q(status=CommissionStatus.APPROVED), Q(status=CommissionStatus.PENDING)
    sums = commissions.aggregate(
        approved_count=Count("id", filter=approved),
        approved_amount=Sum("amount", filter=approved, default=ZERO),
        approved_reversed=Sum("reversed_minor", filter=approved, default=0),
        pending_count=Count("id", filter=pending),
        pending_amount=Sum("amount", filter=pending, default=ZERO),
        pending_reversed=Sum("reversed_minor", filter=pending, default=0),
    )
    return CommissionsBehind(
        lines=[
            CommissionLine(
                commission=c,
                net=from_minor(c.net_minor, currency),
                taken_back=from_minor(c.reversed_minor, currency),
                url=admin_change_path("affiliates.commission", c.pk),
            )
            for c in commissions.order_by("-created_at", "-id")[:limit]
        ],
        approved_count=sums["approved_count"],
        approved_total=Decimal(sums["approved_amount"]) - from_minor(sums["approved_reversed"], currency),
        pending_count=sums["pending_count"],
        pending_total=Decimal(sums["pending_amount"]) - from_minor(sums["pending_reversed"], currency),
    )


def earlier_payouts(*, payout: Payout) -> QuerySet[Payout]:
    """The affiliate's other payouts, newest first, with who reviewed them."""
    return payouts_for(affiliate=payout.affiliate).exclude(pk=payout.pk)


def payout_outcomes(*, affiliate: Affiliate, excluding: Payout | None = None) -> dict[str, int]:
    """{status: count} of the affiliate's payouts (e.g. {"paid": 4, "rejected": 1})."""
    payouts = Payout.objects.filter(affiliate=affiliate)
    if excluding is not None:
        payouts = payouts.exclude(pk=excluding.pk)
    counts = payouts.values("status").annotate(n=Count("id")).order_by("status")
    return {row["status"]: row["n"] for row in counts}
