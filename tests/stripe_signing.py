"""Build Stripe webhook deliveries signed exactly as Stripe signs them (t=<ts>,v1=<hmac>)."""

import hashlib
import hmac
import json
import time
from typing import Any

from django.conf import settings
from django.test import Client


def stripe_event(event_id: str, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }


def sign(payload: bytes, *, secret: str | None = None, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    secret = secret or settings.STRIPE_WEBHOOK_SECRET
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload.decode()}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def post_stripe_event(client: Client, event: dict[str, Any], **sign_kwargs: Any):
    payload = json.dumps(event).encode()
    return client.post(
        "/api/stripe/webhook/",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload, **sign_kwargs),
    )
