from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition


class KycStatus(models.TextChoices):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class Affiliate(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="affiliate")
    # Whole percent. Changed only by tier evaluation's optimistic `filter(commission_rate=old).update()`.
    commission_rate = models.PositiveSmallIntegerField(
        default=20, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    kyc_status = models.CharField(max_length=10, choices=KycStatus.choices, default=KycStatus.PENDING)
    wise_recipient_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Bumped in the same transaction as every change to the 90-day sum (a commission recorded or
    # reversed). Tier evaluation reads it with the sum and writes only if it is unchanged, so an
    # evaluation that computed from a sum which has since moved cannot overwrite a newer answer.
    commission_version = models.PositiveBigIntegerField(
        default=0, editable=False, help_text="Counts changes to the commissions that decide the tier."
    )

    def __str__(self) -> str:
        return self.user.get_username()


class Referral(models.Model):
    """The restaurant (a Stripe customer) an affiliate brought in: one referrer per customer."""

    affiliate = models.ForeignKey(Affiliate, on_delete=models.PROTECT, related_name="referrals")
    stripe_customer_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.stripe_customer_id} -> {self.affiliate_id}"


class CommissionStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REVERSED = "reversed"


class Commission(FSMModelMixin, models.Model):
    affiliate = models.ForeignKey(Affiliate, on_delete=models.PROTECT, related_name="commissions")
    # The second belt behind the event-id claim: one commission per invoice, whatever the events.
    stripe_invoice_id = models.CharField(max_length=255, unique=True)
    stripe_event_id = models.CharField(max_length=255)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    rate = models.PositiveSmallIntegerField(help_text="Commission rate applied, whole percent.")
    status = FSMField(choices=CommissionStatus.choices, default=CommissionStatus.PENDING, protected=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["affiliate", "created_at"], name="commission_affiliate_created")]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gte=Decimal("0")), name="commission_amount_not_negative")
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} for {self.stripe_invoice_id}"

    @transition(field=status, source=CommissionStatus.PENDING, target=CommissionStatus.APPROVED)
    def approve(self) -> None:
        pass

    @transition(
        field=status, source=[CommissionStatus.PENDING, CommissionStatus.APPROVED], target=CommissionStatus.REVERSED
    )
    def reverse(self) -> None:
        pass


class Tier(models.Model):
    """A commission rate earned by a 90-day commission total (in AFFILIATE_CURRENCY) of `threshold` or more."""

    name = models.CharField(max_length=50, unique=True)
    commission_rate = models.PositiveSmallIntegerField(
        unique=True, validators=[MinValueValidator(0), MaxValueValidator(100)], help_text="Whole percent."
    )
    threshold = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        unique=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Non-reversed commissions over the rolling 90 days, in the program currency.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["threshold"]
        constraints = [models.CheckConstraint(condition=models.Q(threshold__gte=Decimal("0")), name="tier_threshold")]

    def __str__(self) -> str:
        return f"{self.name} ({self.commission_rate}% from {self.threshold})"

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
    ACTIVE = "active"
    SUPERSEDED = "superseded"


class TierEvent(FSMModelMixin, models.Model):
    """One real change of an affiliate's rate. Superseded rows are duplicates kept as evidence."""

    affiliate = models.ForeignKey(Affiliate, on_delete=models.PROTECT, related_name="tier_events")
    from_rate = models.PositiveSmallIntegerField()
    to_rate = models.PositiveSmallIntegerField()
    tier_name = models.CharField(max_length=50, blank=True, help_text="The tier reached, as named at the time.")
    window_total = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="The 90-day total that decided it."
    )
    cause = models.CharField(max_length=255, blank=True)
    status = FSMField(choices=TierEventStatus.choices, default=TierEventStatus.ACTIVE, protected=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["affiliate", "status", "-created_at"], name="tier_event_history")]

    def __str__(self) -> str:
        return f"{self.affiliate_id}: {self.from_rate}% -> {self.to_rate}% ({self.status})"

    @property
    def is_promotion(self) -> bool:
        return self.to_rate > self.from_rate

    @transition(field=status, source=TierEventStatus.ACTIVE, target=TierEventStatus.SUPERSEDED)
    def supersede(self) -> None:
        pass
