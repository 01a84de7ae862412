from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models

from audit.severity import Severity


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
    # The hash chain (audit.chain): per object, so transitions on different objects share no
    # serialisation point. Written by the receiver's INSERT itself; a row made any other way (an
    # ORM create in a test) keeps these defaults and verify_audit_trail reports it.
    seq = models.PositiveIntegerField(default=1, help_text="Position in this object's chain, from 1.")
    previous_hash = models.CharField(max_length=64, blank=True, default="", help_text="The previous row's hash.")
    hash = models.CharField(max_length=64, blank=True, default="", help_text="SHA-256 of previous hash, seq, content.")

    class Meta:
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["content_type", "object_id", "-id"], name="audit_obj_latest")]
        constraints = [
            # A fork (two rows claiming one place in a chain) is impossible even if two writers of
            # one object ever raced past the guarded UPDATE's row lock (audit.receivers).
            models.UniqueConstraint(fields=["content_type", "object_id", "seq"], name="audit_obj_seq")
        ]

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


class CriticalBeacon(models.Model):
    """One row per beacon of a critical kind (audit.severity), with its details: the alert mail
    names the object from them, and a second one in the same hour, which mails nobody, is still
    listed in the admin. Critical beacons are rare, so a row each costs nothing."""

    kind = models.CharField(max_length=100)
    hour = models.DateTimeField()
    at = models.DateTimeField()
    details = models.JSONField(default=dict)
    correlation_id = models.CharField(max_length=64, blank=True, help_text="Request or task id.")

    class Meta:
        indexes = [models.Index(fields=["kind", "hour"], name="critical_beacon_kind_hour")]
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"


class BeaconAlert(models.Model):
    """Raised once per kind and hour: when the count crosses BEACON_ALERT_THRESHOLD, or on the first
    beacon of a critical kind."""

    kind = models.CharField(max_length=100)
    hour = models.DateTimeField()
    count = models.PositiveIntegerField()
    severity = models.CharField(max_length=16, choices=[(s.value, s.value) for s in Severity], default=Severity.NORMAL)
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


class FieldChange(models.Model):
    """One change of one money-relevant field (where money goes, what allows it to move, how much
    is earned), written by a database trigger in the statement that changed it (audit.field_trail):
    an admin form, a service, a queryset update, a shell or raw SQL alike. Append-only (a trigger
    refuses UPDATE and DELETE). A secret field records that it changed, never its value."""

    class Operation(models.TextChoices):
        CREATED = "insert", "created"
        CHANGED = "update", "changed"
        DELETED = "delete", "deleted"

    model = models.CharField(max_length=100, help_text="App label and model, e.g. affiliates.affiliate.")
    object_id = models.CharField(max_length=64)
    field = models.CharField(max_length=64)
    operation = models.CharField(max_length=6, choices=Operation.choices)
    old_value = models.TextField(null=True, blank=True)
    new_value = models.TextField(null=True, blank=True)
    value_hidden = models.BooleanField(default=False, help_text="A secret: only the fact of the change is kept.")
    currency = models.CharField(max_length=3, blank=True, help_text="For an amount: its currency.")
    # No foreign key: the row is written by a trigger and must outlive anything it names.
    actor_id = models.IntegerField(null=True, blank=True, help_text="The signed-in user, if any.")
    actor_label = models.CharField(
        max_length=150, blank=True, help_text="Username, system job, or empty when nothing said who (raw SQL)."
    )
    correlation_id = models.CharField(max_length=64, blank=True, help_text="Request or task id.")
    at = models.DateTimeField(help_text="The database's clock when the change was written.")

    class Meta:
        indexes = [models.Index(fields=["model", "object_id", "-id"], name="field_change_obj_latest")]

    def __str__(self) -> str:
        who = self.actor_label or "?"
        return f"{self.model} #{self.object_id} {self.field} {self.get_operation_display()} by {who}"
