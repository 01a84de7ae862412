"""Provider event ids, claimed once per provider."""

from django.db import models


class WebhookEvent(models.Model):
    """A provider's event id, claimed once: a replayed delivery finds its row and does nothing."""

    provider = models.CharField(max_length=20)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100)
    received_at = models.DateTimeField()

    class Meta:
        db_table = "audit_webhookevent"  # created by audit's first migration; kept so no table moves
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="webhook_event_once")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id} ({self.event_type})"
