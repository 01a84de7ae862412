"""POS connections, restaurant orders and the sync queue that pushes each order to the POS once.

Declarations only: which moves are legal. Every move is applied by audit.transitions through the
services (guarded UPDATE, audit row, beacon on a lost race).
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition


class Provider(models.TextChoices):
    SQUARE = "square", "Square"


class PosConnection(models.Model):
    """A restaurant's POS account. The access token is a secret: write-only in the admin, never
    logged, never part of str()/repr() or any API output."""

    restaurant_name = models.CharField(max_length=200)
    provider = models.CharField("POS", max_length=30, choices=Provider.choices, default=Provider.SQUARE)
    location_id = models.CharField(
        "POS location",
        max_length=64,
        blank=True,
        help_text="The restaurant's location at the POS, where its orders are recorded.",
    )
    access_token = models.CharField(max_length=255, blank=True)
    is_active = models.BooleanField(
        "active", default=True, help_text="Send this restaurant's orders to its POS. Untick to stop sending."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "POS connection"
        ordering = ["restaurant_name"]

    def __str__(self) -> str:
        return f"{self.restaurant_name} ({self.provider})"

    def __repr__(self) -> str:
        return f"<PosConnection #{self.pk} {self.restaurant_name!r} {self.provider}>"

    @property
    def has_token(self) -> bool:
        return bool(self.access_token)


class OrderStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed (paid)"  # paid at the table: ready to be pushed to the POS
    VOIDED = "voided", "Voided"


class Order(FSMModelMixin, models.Model):
    """A restaurant order. line_items: [{"name": str, "quantity": int, "unit_price": "12.50"}]."""

    connection = models.ForeignKey(
        PosConnection, on_delete=models.PROTECT, related_name="orders", verbose_name="restaurant"
    )
    table_id = models.CharField("table", max_length=30)
    line_items = models.JSONField("items", default=list)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    placed_at = models.DateTimeField(default=timezone.now)
    status = FSMField(choices=OrderStatus.choices, default=OrderStatus.OPEN, protected=True)

    class Meta:
        ordering = ["-placed_at", "-id"]

    def __str__(self) -> str:
        return f"Order #{self.pk} (table {self.table_id})"

    @transition(field=status, source=OrderStatus.OPEN, target=OrderStatus.CLOSED)
    def close(self) -> None:
        pass

    @transition(field=status, source=OrderStatus.OPEN, target=OrderStatus.VOIDED)
    def void(self) -> None:
        pass


class SyncJobStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SUCCESS = "success", "Sent"
    FAILED = "failed", "Failed, will retry"  # will be retried at next_attempt_at
    DEAD = "dead", "Gave up (needs a requeue)"  # a dead letter: only a human requeues it


LIVE_STATUSES = [SyncJobStatus.PENDING, SyncJobStatus.FAILED]


class SyncJob(FSMModelMixin, models.Model):
    """One push of one order to one provider. At most one live (pending/failed) job per pair;
    finished ones (success/dead) stay as history, so a new job for the pair can follow them."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="sync_jobs")
    # free text on purpose: an unknown one fails the job, visibly
    provider = models.CharField("POS", max_length=30)
    status = FSMField(choices=SyncJobStatus.choices, default=SyncJobStatus.PENDING, protected=True)
    attempts = models.PositiveIntegerField(default=0, help_text="How many times sending was tried.")
    next_attempt_at = models.DateTimeField(
        "next attempt", default=timezone.now, help_text="When it will be tried (again), while it waits or is retried."
    )
    first_attempted_at = models.DateTimeField(
        "first tried at",
        null=True,
        blank=True,
        help_text="The first try. For a while after it the POS recognises a repeat of this order and does not "
        "record it twice; after that, the order is looked up at the POS before it is sent again.",
    )
    last_error_code = models.CharField("last error (kind)", max_length=40, blank=True)
    last_error = models.TextField(blank=True)
    provider_order_id = models.CharField("order at the POS", max_length=64, blank=True)
    provider_payment_id = models.CharField("payment at the POS", max_length=64, blank=True)
    enqueued_by = models.CharField("queued by", max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "sync job"
        ordering = ["-created_at", "-id"]
        permissions = [("requeue_syncjob", "Can requeue dead sync jobs")]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "provider"],
                condition=Q(status__in=LIVE_STATUSES),
                name="pos_syncjob_one_live_job_per_order_provider",
            )
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status__in=LIVE_STATUSES), name="pos_syncjob_due"),
        ]

    def __str__(self) -> str:
        return f"Sync job #{self.pk} (order #{self.order_id} to {self.provider}, {self.get_status_display()})"

    @transition(field=status, source=LIVE_STATUSES, target=SyncJobStatus.SUCCESS)
    def succeed(self) -> None:
        pass

    @transition(field=status, source=LIVE_STATUSES, target=SyncJobStatus.FAILED)
    def fail(self) -> None:
        pass

    @transition(field=status, source=LIVE_STATUSES, target=SyncJobStatus.DEAD)
    def dead_letter(self) -> None:
        pass

    @transition(
        field=status, source=SyncJobStatus.DEAD, target=SyncJobStatus.PENDING, permission="pos_sync.requeue_syncjob"
    )
    def requeue(self) -> None:
        pass
