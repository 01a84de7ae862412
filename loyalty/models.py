from django.conf import settings
from django.db import models
from django.db.models import Q
from django_fsm import FSMField, FSMModelMixin, transition

PRO_PLAN = "pro"


class SubscriptionStatus(models.TextChoices):
    """Stripe's subscription statuses, mirrored as Stripe reports them."""

    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"
    UNPAID = "unpaid"
    PAUSED = "paused"


class Subscription(models.Model):
    """A mirror of a Stripe subscription, written only by the `customer.subscription.*` webhooks.

    Its status is Stripe's, not a state machine of ours. Webhooks arrive unordered and `event.created`
    has one-second resolution, so every event makes us read the subscription at Stripe and mirror
    that; each write is a conditional update that only a read started later (a higher
    `read_ticket`, see SubscriptionRead) can make.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="subscriptions")
    stripe_customer_id = models.CharField("Stripe customer", max_length=255, db_index=True)
    stripe_subscription_id = models.CharField("Stripe subscription", max_length=255, unique=True)
    plan = models.CharField(max_length=100, help_text="The plan the customer pays for at Stripe (e.g. pro).")
    status = models.CharField(max_length=20, choices=SubscriptionStatus.choices, help_text="As Stripe reports it.")
    pro_started_at = models.DateTimeField(
        "Pro since",
        null=True,
        blank=True,
        help_text="Start of the current unbroken Pro period; loyalty anniversaries count from here.",
    )
    last_event_at = models.DateTimeField(
        "last Stripe event at", help_text="When Stripe sent the event that last updated this copy."
    )
    read_ticket = models.BigIntegerField(
        "read number",
        default=0,
        help_text="Which read from Stripe this copy comes from; only a later read can replace it.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["plan", "status", "pro_started_at"], name="loyalty_sub_eligible")]

    def __str__(self) -> str:
        return f"{self.stripe_subscription_id} ({self.plan}, {self.status})"

    @property
    def is_active_pro(self) -> bool:
        return self.plan == PRO_PLAN and self.status == SubscriptionStatus.ACTIVE and self.pro_started_at is not None


class SubscriptionRead(models.Model):
    """A ticket for one read of a subscription at Stripe, committed before the GET is sent.

    PostgreSQL hands out the ids in increasing order, so a read that starts after another's ticket
    was taken always holds a higher id. The mirror keeps the highest ticket it applied, so an older
    read that comes back late (whatever its event's second) never overwrites a newer one.
    """

    id = models.BigAutoField(primary_key=True)
    stripe_subscription_id = models.CharField(max_length=255)
    stripe_event_id = models.CharField(
        "Stripe event", max_length=255, blank=True, help_text="The Stripe event that asked for the read."
    )
    taken_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"read {self.pk} of {self.stripe_subscription_id}"


class DiscountStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPLIED = "applied", "Code created"
    SKIPPED = "skipped", "Skipped (left Pro)"
    REVOKED = "revoked", "Revoked"


# Rows in these states hold the anniversary: at most one per user and anniversary (partial UNIQUE).
LIVE_STATUSES = [DiscountStatus.PENDING, DiscountStatus.APPLIED, DiscountStatus.SKIPPED]


class LoyaltyDiscount(FSMModelMixin, models.Model):
    """One anniversary discount: a customer-restricted, single-use Stripe promotion code.

    The row is inserted `pending` BEFORE Stripe is called; the partial UNIQUE on (user, anniversary)
    over live rows makes a second insert for the same anniversary fail, whichever tick tries it.
    Revoked rows are history and exempt, so a customer who cancels and resubscribes can earn again.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="loyalty_discounts")
    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="discounts")
    anniversary = models.PositiveSmallIntegerField(help_text="Years on Pro: 1 after 12 months, 2 after 24 ...")
    status = FSMField(choices=DiscountStatus.choices, default=DiscountStatus.PENDING, protected=True)
    code = models.CharField(
        max_length=100, help_text="The code the customer types in; the same for a customer and year."
    )
    stripe_promotion_code_id = models.CharField("Stripe promotion code", max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="How many times the code was asked for at Stripe.")
    first_attempt_at = models.DateTimeField(
        "first tried at",
        null=True,
        blank=True,
        help_text="For 24 hours from the first try, Stripe recognises a repeat and creates the code only once.",
    )
    last_attempt_at = models.DateTimeField("last tried at", null=True, blank=True)
    last_error = models.TextField(blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    stripe_closed_at = models.DateTimeField(
        "closed at Stripe",
        null=True,
        blank=True,
        help_text="When Stripe confirmed the revoked code can no longer be used.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "anniversary"],
                condition=Q(status__in=LIVE_STATUSES),
                name="loyalty_one_live_discount_per_anniversary",
            ),
            models.CheckConstraint(condition=Q(anniversary__gte=1), name="loyalty_anniversary_positive"),
        ]
        indexes = [
            models.Index(fields=["status", "last_attempt_at"], name="loyalty_discount_status_try"),
            models.Index(fields=["subscription", "anniversary"], name="loyalty_discount_sub_year"),
            models.Index(fields=["stripe_promotion_code_id"], name="loyalty_discount_promo"),
        ]
        permissions = [("revoke_loyaltydiscount", "Can revoke loyalty discounts")]

    def __str__(self) -> str:
        return f"{self.code} (year {self.anniversary}, {self.status})"

    @transition(field=status, source=DiscountStatus.PENDING, target=DiscountStatus.APPLIED)
    def apply(self) -> None:
        pass

    @transition(field=status, source=DiscountStatus.PENDING, target=DiscountStatus.SKIPPED)
    def skip(self) -> None:
        pass

    @transition(
        field=status,
        source=LIVE_STATUSES,
        target=DiscountStatus.REVOKED,
        permission="loyalty.revoke_loyaltydiscount",
    )
    def revoke(self) -> None:
        pass
