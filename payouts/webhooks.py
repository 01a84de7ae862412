"""Wise webhooks: the RSA-SHA256 signature check on the raw body, and parsing. Hands over to services."""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from django.conf import settings

from core.errors import ValidationError
from webhooks.errors import WebhookErrorCode

STATE_CHANGE = "transfers#state-change"


@dataclass(frozen=True)
class WiseStateChange:
    transfer_id: str
    state: str
    occurred_at: datetime


def verify_wise_signature(*, payload: bytes, signature: str | None) -> None:
    """X-Signature-SHA256: base64 RSA-SHA256 (PKCS#1 v1.5) over the raw body, Wise's public key."""
    if not signature:
        raise ValidationError("Missing X-Signature-SHA256 header.", code=WebhookErrorCode.INVALID_SIGNATURE)
    try:
        _public_key().verify(base64.b64decode(signature, validate=True), payload, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise ValidationError("Wise signature rejected.", code=WebhookErrorCode.INVALID_SIGNATURE) from exc


def parse_state_change(payload: bytes) -> WiseStateChange | None:
    """The transfer state change in a delivery, or None for an event type we do not handle."""
    try:
        event = json.loads(payload)
        if event.get("event_type") != STATE_CHANGE:
            return None
        data = event["data"]
        occurred_at = datetime.fromisoformat(data["occurred_at"])
        if occurred_at.tzinfo is None:
            raise ValueError("occurred_at has no time zone")
        return WiseStateChange(str(int(data["resource"]["id"])), str(data["current_state"]), occurred_at)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValidationError(
            f"Not a Wise transfers#state-change delivery: {exc}", code=WebhookErrorCode.INVALID_PAYLOAD
        ) from exc


def _public_key() -> RSAPublicKey:
    pem = settings.WISE_WEBHOOK_PUBLIC_KEY
    if not pem:
        raise ValueError("WISE_WEBHOOK_PUBLIC_KEY is not set: no delivery can be verified.")
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, RSAPublicKey):
        raise ValueError("WISE_WEBHOOK_PUBLIC_KEY is not an RSA public key.")
    return key
