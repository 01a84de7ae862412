"""Helpers shared by the payouts tests."""

import json

from django.test import Client

from sandbox.wise import WiseStandIn


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
