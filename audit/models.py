from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models


class AuditEntry(models.Model):
    """One row per won transition, written in the transaction that made the change."""

    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT)
    object_id = models.CharField(max_length=64)
    field = models.CharField(max_length=64)
    transition = models.CharField(max_length=64)
    source = models.CharField(max_length=64)
    target = models.CharField(max_length=64)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=150, help_text="Username, or the system job's name.")
    reason = models.TextField(blank=True)
    correlation_id = models.CharField(max_length=64, blank=True, help_text="Request or task id.")
    at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["content_type", "object_id", "-id"], name="audit_obj_latest")]

    def __str__(self) -> str:
        return f"{self.content_type.model} #{self.object_id}: {self.source} -> {self.target} by {self.actor_label}"


class Claim(models.Model):
    """An idempotency claim: whoever inserts the key first owns the work it names.

    A claim with a lease that has run out, and was never completed, can be taken over: the
    holder died without finishing, and the work is itself idempotent downstream.
    """

    key = models.CharField(max_length=255, unique=True)
    token = models.CharField(
        max_length=64, help_text="Identifies the holder, so a stale holder cannot release a taken-over claim."
    )
    claimed_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.key


class BeaconCount(models.Model):
    """How many lost races or refused transitions of one kind happened in one hour."""

    kind = models.CharField(max_length=100)
    hour = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "hour"], name="beacon_count_kind_hour")]
        ordering = ["-hour", "kind"]

    def __str__(self) -> str:
        return f"{self.kind} @ {self.hour:%Y-%m-%d %H:00}: {self.count}"


class BeaconAlert(models.Model):
    """Raised once per kind and hour when the count crosses BEACON_ALERT_THRESHOLD."""

    kind = models.CharField(max_length=100)
    hour = models.DateTimeField()
    count = models.PositiveIntegerField()
    raised_at = models.DateTimeField()
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "hour"], name="beacon_alert_kind_hour")]
        ordering = ["-hour"]

    def __str__(self) -> str:
        return f"{self.count} x {self.kind} in the hour from {self.hour:%Y-%m-%d %H:00}"


class WebhookEvent(models.Model):
    """A provider's event id, claimed once: a replayed delivery finds its row and does nothing."""

    provider = models.CharField(max_length=20)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="webhook_event_once")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id} ({self.event_type})"
