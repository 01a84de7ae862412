"""Idempotency claims: the one row type every app uses to decide who does a piece of work."""

from django.db import models


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

    class Meta:
        db_table = "audit_claim"  # created by audit's first migration; kept so no table moves

    def __str__(self) -> str:
        return self.key
