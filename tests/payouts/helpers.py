"""Helpers shared by the payouts tests."""

import json
from datetime import UTC, datetime, timedelta

from django.test import Client
from django.utils import timezone

from payouts.models import Payout, PayoutStatus
from payouts.services import dispatch_wise_transfer
from sandbox.wise import WiseStandIn
from tests.factories.payouts import PayoutFactory


def post_webhook(client: Client, body: bytes, headers: dict[str, str]):
    return client.post(
        "/api/wise/webhook/",
        data=body,
        content_type="application/json",
        headers=headers,
    )


def deliver(client: Client, wise: WiseStandIn, transfer_id, state: str, occurred_at: str):
    body, headers = wise.signed_delivery(transfer_id, state, occurred_at)
    return post_webhook(client, body, headers)


def api_json(response) -> dict:
    return json.loads(response.content) if response.content else {}


# Wise's occurred_at, minutes after a fixed instant: webhook ordering tests need stable times.
T0 = datetime(2026, 11, 25, 9, 14, tzinfo=UTC)


def wise_time(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def funded_processing_payout() -> Payout:
    """A processing payout whose transfer really exists (and is funded) at the stand-in."""
    payout = PayoutFactory(status=PayoutStatus.APPROVED, reviewed_at=timezone.now())
    assert dispatch_wise_transfer(payout_id=payout.pk) == "funded"
    payout.refresh_from_db()
    return payout
