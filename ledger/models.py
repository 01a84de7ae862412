"""Accounts and immutable transfers, after TigerBeetle's data model.

Amounts are integers in the currency's minor units (ledger.currencies). Every transfer debits one
account and credits another of the same currency. Only accounts whose kind `tracks_balance` keep
the four running balance columns (the affiliate's payable account, where a limit is enforced);
the platform's accounts are touched by every commission and payout, so their balances are derived
from their transfers and no posting ever waits on one hot platform row.
"""

from dataclasses import dataclass

from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class AccountKind(models.TextChoices):
    AFFILIATE_PAYABLE = "affiliate_payable", "Affiliate payable"
    COMMISSION_EXPENSE = "commission_expense", "Commission expense"
    WISE_CLEARING = "wise_clearing", "Wise clearing"
    REFUNDS = "refunds", "Refunds"


@dataclass(frozen=True)
class KindPolicy:
    owned: bool  # an owner_id is required (else it must be blank: one platform account per currency)
    tracks_balance: bool
    enforce_balance: bool  # TigerBeetle's debits_must_not_exceed_credits


ACCOUNT_POLICIES: dict[str, KindPolicy] = {
    AccountKind.AFFILIATE_PAYABLE: KindPolicy(owned=True, tracks_balance=True, enforce_balance=True),
    AccountKind.COMMISSION_EXPENSE: KindPolicy(owned=False, tracks_balance=False, enforce_balance=False),
    AccountKind.WISE_CLEARING: KindPolicy(owned=False, tracks_balance=False, enforce_balance=False),
    AccountKind.REFUNDS: KindPolicy(owned=False, tracks_balance=False, enforce_balance=False),
}


class TransferKind(models.TextChoices):
    COMMISSION_EARNED = "commission_earned", "Commission earned"
    COMMISSION_REVERSED = "commission_reversed", "Commission reversed (refund, lost dispute)"
    PAYOUT = "payout", "Payout"
    PAYOUT_RETURNED = "payout_returned", "Payout returned (bounced after it was sent)"
    ADJUSTMENT = "adjustment", "Adjustment"


# A single-phase debit that records money which already went out may take an enforce_balance
# account below zero (a clawback carried forward): a reversal (refund, lost dispute) or a payout
# Wise sent after its hold had been released (a late success). Its debit is applied
# unconditionally. Every other debit of such an account, and every reservation (pending) whatever
# its kind, is the one guarded UPDATE.
OVERDRAFT_KINDS = frozenset({TransferKind.COMMISSION_REVERSED, TransferKind.PAYOUT})


class TransferFlag(models.TextChoices):
    PLAIN = "plain", "Posted directly"
    PENDING = "pending", "Held (reservation)"
    POST_PENDING = "post_pending", "Hold posted"
    VOID_PENDING = "void_pending", "Hold released"


RESOLUTION_FLAGS = (TransferFlag.POST_PENDING, TransferFlag.VOID_PENDING)
POSTED_FLAGS = (TransferFlag.PLAIN, TransferFlag.POST_PENDING)


IN_MINOR_UNITS = "In the currency's smallest unit (e.g. cents)."


class Account(models.Model):
    kind = models.CharField("account type", max_length=32, choices=AccountKind.choices)
    owner_id = models.CharField(
        "owner",
        max_length=64,
        blank=True,
        default="",
        help_text="The affiliate (its number) for a payable account; blank for the platform's own accounts.",
    )
    currency = models.CharField(max_length=3)
    tracks_balance = models.BooleanField(
        "keeps its balance", default=False, help_text="Its balance is kept on the account (affiliate accounts)."
    )
    enforce_balance = models.BooleanField(
        "no overdraft",
        default=False,
        help_text="Payouts can never take more than was earned (only a refund after a payout can go below zero).",
    )
    # Moved only by ledger.services, in the transaction that inserts the transfer; zero and
    # unused unless tracks_balance.
    debits_pending = models.BigIntegerField(
        "held debits", default=0, help_text=f"Held by payouts in review or on their way. {IN_MINOR_UNITS}"
    )
    debits_posted = models.BigIntegerField("posted debits", default=0, help_text=IN_MINOR_UNITS)
    credits_pending = models.BigIntegerField("held credits", default=0, help_text=IN_MINOR_UNITS)
    credits_posted = models.BigIntegerField("posted credits", default=0, help_text=IN_MINOR_UNITS)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "owner_id", "currency"], name="ledger_account_one_per_owner"),
            models.CheckConstraint(
                condition=Q(tracks_balance=True) | Q(enforce_balance=False), name="ledger_account_enforce_needs_columns"
            ),
            models.CheckConstraint(
                condition=Q(debits_pending__gte=0, debits_posted__gte=0, credits_pending__gte=0, credits_posted__gte=0),
                name="ledger_account_columns_not_negative",
            ),
        ]

    def __str__(self) -> str:
        owner = f" {self.owner_id}" if self.owner_id else ""
        return f"{self.get_kind_display()}{owner} ({self.currency})"


class Transfer(models.Model):
    """Immutable: a PostgreSQL trigger refuses UPDATE and DELETE (migration 0002); a correction
    is a new transfer."""

    id = models.CharField(
        "transfer",
        primary_key=True,
        max_length=255,
        help_text="Named after what it records (commission:12:earn), so the same money is never booked twice.",
    )
    debit_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="debits")
    credit_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="credits")
    amount = models.BigIntegerField(help_text=IN_MINOR_UNITS)
    currency = models.CharField(max_length=3)
    kind = models.CharField("type", max_length=32, choices=TransferKind.choices)
    flag = models.CharField(
        "phase",
        max_length=16,
        choices=TransferFlag.choices,
        default=TransferFlag.PLAIN,
        help_text="Posted directly, or held first (a payout in review) and then posted or released.",
    )
    # UNIQUE: a pending transfer resolves at most once; its post or void is a new transfer here.
    pending = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="resolution",
        db_column="pending_id",
        verbose_name="hold it settles",
    )
    reference = models.CharField(
        "records", max_length=255, blank=True, default="", help_text="The commission or payout it records."
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="ledger_transfer_amount_positive"),
            models.CheckConstraint(
                condition=~Q(debit_account=F("credit_account")), name="ledger_transfer_distinct_accounts"
            ),
            models.CheckConstraint(
                condition=(Q(flag__in=RESOLUTION_FLAGS) & Q(pending__isnull=False))
                | (~Q(flag__in=RESOLUTION_FLAGS) & Q(pending__isnull=True)),
                name="ledger_transfer_pending_iff_resolution",
            ),
        ]

    def __str__(self) -> str:
        return self.id
