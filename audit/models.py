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
