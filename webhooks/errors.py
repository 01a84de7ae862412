"""The webhooks app's error codes: a provider delivery we refuse (Stripe's here, Wise's in payouts)."""

from django.db import models


class WebhookErrorCode(models.TextChoices):
    INVALID_SIGNATURE = "invalid_signature"
    INVALID_PAYLOAD = "invalid_payload"
    PROVIDER_UNAVAILABLE = "provider_unavailable"  # a handler's read at the provider failed: redeliver
