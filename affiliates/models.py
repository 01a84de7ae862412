from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition

from core import currencies
from core.money import format_money


class KycStatus(models.TextChoices):
    PENDING = "pending", "Not yet checked"
    VERIFIED = "verified", "Verified"
    REJECTED = "rejected", "Rejected"


class Affiliate(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="affiliate")
    # Whole percent. Changed only by tier evaluation's optimistic `filter(commission_rate=old).update()`.
    commission_rate = models.PositiveSmallIntegerField(
        default=20,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Percent of each paid invoice. Set by the affiliate's tier, re-evaluated automatically.",
    )
    kyc_status = models.CharField(
        "identity check (KYC)",
        max_length=10,
        choices=KycStatus.choices,
        default=KycStatus.PENDING,
        help_text="Payouts can be approved only once the affiliate's identity is verified.",
    )
    wise_recipient_id = models.CharField(
        "Wise recipient",
        max_length=64,
        blank=True,
        help_text="The Wise account payouts are sent to. An approved payout keeps the recipient it was approved for.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Bumped in the same transaction as every change to the 90-day sum (a commission recorded or
    # reversed). Tier evaluation reads it with the sum and writes only if it is unchanged, so an
    # evaluation that computed from a sum which has since moved cannot overwrite a newer answer.
    commission_version = models.PositiveBigIntegerField(
        "commission changes",
        default=0,
        editable=False,
        help_text="How often this affiliate's commissions changed; keeps tier re-evaluations in order.",
    )

    def __str__(self) -> str:
        return self.user.get_username()


class Referral(models.Model):
    """The restaurant (a Stripe customer) an affiliate brought in: one referrer per customer."""

    affiliate = models.ForeignKey(Affiliate, on_delete=models.PROTECT, related_name="referrals")
    stripe_customer_id = models.CharField(
        "restaurant (Stripe customer)",
        max_length=255,
        unique=True,
        help_text="The referred restaurant's customer id at Stripe: its paid invoices earn this affiliate commissions.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.stripe_customer_id} (affiliate #{self.affiliate_id})"


class CommissionStatus(models.TextChoices):
    PENDING = "pending", "Pending (on hold)"
    APPROVED = "approved", "Approved (payable)"
    REVERSED = "reversed", "Reversed"


class Commission(FSMModelMixin, models.Model):
    affiliate = models.ForeignKey(Affiliate, on_delete=models.PROTECT, related_name="commissions")
    # The second belt behind the event-id claim: one commission per invoice, whatever the events.
    stripe_invoice_id = models.CharField("Stripe invoice", max_length=255, unique=True)
    stripe_event_id = models.CharField("Stripe event", max_length=255)
    # Major units with the currency's own precision (3 decimals: KWD, BHD ...; the ISO minor unit
    # of every currency Stripe charges in fits). amount_minor is what the ledger posts.
    amount = models.DecimalField(max_digits=15, decimal_places=3)
    currency = models.CharField(max_length=3)
    rate = models.PositiveSmallIntegerField(
        help_text="The affiliate's commission rate (percent) when the invoice was paid."
    )
    status = FSMField(choices=CommissionStatus.choices, default=CommissionStatus.PENDING, protected=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # What Stripe said was paid (Stripe's smallest unit): the denominator of a partial refund.
    invoice_amount_paid = models.BigIntegerField(
        "invoice paid (Stripe's units)", null=True, blank=True, editable=False
    )
    # Cumulative minor units taken back (partial refunds, a lost dispute). Moved only by
    # affiliates.services.commissions under the commission row lock, and only upwards: the
    # ledger's reversals of an approved commission sum to it, an approval posts amount - this.
    reversed_minor = models.BigIntegerField("taken back (minor units)", default=0, editable=False)
    # An open dispute: the commission is not approved while it lasts (won -> released, lost -> reversed).
    disputed = models.BooleanField(
        default=False, editable=False, help_text="A dispute is open: the commission is held until it is decided."
    )

    class Meta:
        indexes = [models.Index(fields=["affiliate", "created_at"], name="commission_affiliate_created")]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gte=Decimal("0")), name="commission_amount_not_negative"),
            models.CheckConstraint(condition=models.Q(reversed_minor__gte=0), name="commission_reversed_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{format_money(self.amount_display, self.currency)} for {self.stripe_invoice_id}"

    @property
    def amount_minor(self) -> int:
        return currencies.to_minor(Decimal(self.amount), self.currency)

    @property
    def amount_display(self) -> Decimal:
        """The amount with exactly the currency's decimals (0.200 KWD, 20.00 USD, 500 JPY)."""
        return currencies.from_minor(self.amount_minor, self.currency)

    @property
    def net_minor(self) -> int:
        return self.amount_minor - self.reversed_minor

    @transition(field=status, source=CommissionStatus.PENDING, target=CommissionStatus.APPROVED)
    def approve(self) -> None:
        pass

    @transition(
        field=status, source=[CommissionStatus.PENDING, CommissionStatus.APPROVED], target=CommissionStatus.REVERSED
    )
    def reverse(self) -> None:
        pass


class AdjustmentKind(models.TextChoices):
    REFUND = "refund", "Refund"
    DISPUTE = "dispute", "Dispute"


class AdjustmentStatus(models.TextChoices):
    REFUNDED = "refunded", "Refunded"  # a refund: `amount` is the charge's cumulative amount_refunded
    OPEN = "open", "Dispute open"  # a dispute under way: the commission is held
    WON = "won", "Dispute won"
    LOST = "lost", "Dispute lost"


class StripeAdjustment(models.Model):
    """A refund or dispute as Stripe reported it, kept whether or not its invoice's commission
    exists yet: webhooks are unordered, so a refund may arrive before invoice.paid. The
    commission is settled from these rows (when either side arrives), never from one event.

    One row per Stripe object (UNIQUE kind + object id): a charge's refunds are cumulative
    (amount_refunded only grows), a dispute's status moves open -> won | lost and never back.
    """

    kind = models.CharField(max_length=10, choices=AdjustmentKind.choices)
    stripe_object_id = models.CharField(
        "Stripe refund or dispute", max_length=255, help_text="The charge (for a refund) or the dispute at Stripe."
    )
    stripe_charge_id = models.CharField("Stripe charge", max_length=255, blank=True)
    stripe_payment_intent_id = models.CharField("Stripe payment", max_length=255, blank=True, db_index=True)
    # Blank until matched: on API versions from 2025-03-31 a Charge no longer names its invoice.
    stripe_invoice_id = models.CharField(
        "Stripe invoice",
        max_length=255,
        blank=True,
        db_index=True,
        help_text="Blank while the invoice is still being looked up at Stripe.",
    )
    amount = models.BigIntegerField(help_text="Refunded so far, or disputed (in Stripe's units for the currency).")
    charge_amount = models.BigIntegerField(
        default=0, help_text="The whole charge (in Stripe's units for the currency)."
    )
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=AdjustmentStatus.choices)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "stripe_object_id"], name="stripe_adjustment_one_per_object"),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="stripe_adjustment_amount_not_negative"),
        ]

    def __str__(self) -> str:
        invoice = self.stripe_invoice_id or "not matched yet"
        return f"{self.get_kind_display()} {self.stripe_object_id} ({self.get_status_display()}), invoice {invoice}"


class Tier(models.Model):
    """A commission rate earned by a 90-day commission total (in AFFILIATE_CURRENCY) of `threshold` or more."""

    name = models.CharField(max_length=50, unique=True)
    commission_rate = models.PositiveSmallIntegerField(
        unique=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Percent of each paid invoice, in whole percent.",
    )
    threshold = models.DecimalField(
        "from 90-day commissions of",
        max_digits=12,
        decimal_places=2,
        unique=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="An affiliate reaches this tier once its commissions of the last 90 days, less refunds, come "
        "to this amount in the program's currency.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["threshold"]
        constraints = [models.CheckConstraint(condition=models.Q(threshold__gte=Decimal("0")), name="tier_threshold")]

    def __str__(self) -> str:
        return f"{self.name} ({self.commission_rate}% from {format_money(self.threshold, settings.AFFILIATE_CURRENCY)})"

    def clean(self) -> None:
        # A higher threshold must pay a higher rate, or "promotion" would lower the rate.
        others = Tier.objects.exclude(pk=self.pk)
        if self.threshold is None or self.commission_rate is None:
            return
        if others.filter(threshold__lt=self.threshold, commission_rate__gte=self.commission_rate).exists() or (
            others.filter(threshold__gt=self.threshold, commission_rate__lte=self.commission_rate).exists()
        ):
            raise DjangoValidationError("A tier with a higher threshold must have a higher commission rate.")


class TierEventStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUPERSEDED = "superseded", "Superseded (duplicate)"


class TierEvent(FSMModelMixin, models.Model):
    """One real change of an affiliate's rate. Superseded rows are duplicates kept as evidence."""

    affiliate = models.ForeignKey(Affiliate, on_delete=models.PROTECT, related_name="tier_events")
    from_rate = models.PositiveSmallIntegerField("rate before (%)")
    to_rate = models.PositiveSmallIntegerField("rate after (%)")
    tier_name = models.CharField("tier", max_length=50, blank=True, help_text="The tier reached, as named at the time.")
    window_total = models.DecimalField(
        "90-day commissions",
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="The affiliate's commissions over the 90 days before, which decided the change.",
    )
    cause = models.CharField("reason", max_length=255, blank=True)
    status = FSMField(choices=TierEventStatus.choices, default=TierEventStatus.ACTIVE, protected=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["affiliate", "status", "-created_at"], name="tier_event_history")]

    def __str__(self) -> str:
        return f"Affiliate #{self.affiliate_id}: {self.from_rate}% to {self.to_rate}% ({self.get_status_display()})"

    @property
    def is_promotion(self) -> bool:
        return self.to_rate > self.from_rate

    @transition(field=status, source=TierEventStatus.ACTIVE, target=TierEventStatus.SUPERSEDED)
    def supersede(self) -> None:
        pass
