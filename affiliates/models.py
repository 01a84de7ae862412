from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
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

    def __str__(self) -> str:
        return self.user.get_username()


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
