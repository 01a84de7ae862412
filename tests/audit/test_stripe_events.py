"""The shared Stripe webhook pipeline: signature, event-id claim, handler registry."""

import pytest
from django.db import connection

from core.stripe_client import StripeUnavailable
from tests.stripe_signing import post_stripe_event, sign, stripe_event
from webhooks.models import WebhookEvent
from webhooks.stripe_events import _handlers, _readers, on_stripe_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def seen():
    calls: list[str] = []

    def handler(*, event):
        if event.data.object.to_dict().get("explode"):
            raise RuntimeError("handler failed")
        calls.append(event.id)

    on_stripe_event("test.event")(handler)
    yield calls
    _handlers["test.event"].remove(handler)


def test_signed_event_is_dispatched_once_and_replays_are_noops(client, seen):
    event = stripe_event("evt_1", "test.event", {"id": "obj_1"})
    first = post_stripe_event(client, event)
    replay = post_stripe_event(client, event)
    assert (first.status_code, first.json()["outcome"]) == (200, "processed")
    assert (replay.status_code, replay.json()["outcome"]) == (200, "duplicate")
    assert seen == ["evt_1"] and WebhookEvent.objects.count() == 1


def test_unhandled_type_is_claimed_and_ignored(client):
    response = post_stripe_event(client, stripe_event("evt_2", "nobody.cares", {}))
    assert response.json()["outcome"] == "ignored"


@pytest.mark.parametrize(
    "signature",
    [None, "t=1,v1=deadbeef", "garbage"],
    ids=["missing", "wrong", "malformed"],
)
def test_bad_signature_is_400_json_and_writes_nothing(client, seen, signature):
    kwargs = {} if signature is None else {"HTTP_STRIPE_SIGNATURE": signature}
    response = client.post(
        "/api/stripe/webhook/", data=b'{"id": "evt_3", "type": "test.event"}', content_type="application/json", **kwargs
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_signature"
    assert seen == [] and not WebhookEvent.objects.exists()


def test_stale_timestamp_and_wrong_secret_are_refused(client, seen):
    import json
    import time

    payload = json.dumps(stripe_event("evt_4", "test.event", {})).encode()
    stale = sign(payload, timestamp=int(time.time()) - 301)
    wrong = sign(payload, secret="whsec_other")
    for header in (stale, wrong):
        response = client.post(
            "/api/stripe/webhook/", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )
        assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_failing_handler_rolls_back_the_claim_so_a_redelivery_is_processed(client, seen):
    client.raise_request_exception = False
    failing = stripe_event("evt_5", "test.event", {"explode": True})
    assert post_stripe_event(client, failing).status_code == 500
    assert not WebhookEvent.objects.exists()
    fixed = stripe_event("evt_5", "test.event", {"explode": False})
    assert post_stripe_event(client, fixed).json()["outcome"] == "processed"


@pytest.fixture
def read_first():
    """A handler that reads its object at Stripe first (as the loyalty mirror does)."""
    seen: dict[str, list] = {"reads": [], "handled": []}

    def reader(*, event):
        if event.data.object.to_dict().get("unavailable"):
            raise StripeUnavailable("Stripe is down", status=503)
        seen["reads"].append((event.id, connection.in_atomic_block))
        return f"read:{event.id}"

    def handler(*, event, read):
        seen["handled"].append(read)

    on_stripe_event("test.read", read_first=reader)(handler)
    yield seen
    _handlers["test.read"].remove(handler)
    del _readers[handler]


@pytest.mark.django_db(transaction=True)
def test_a_reader_runs_outside_any_transaction_and_hands_its_read_to_the_handler(client, read_first):
    event = stripe_event("evt_r1", "test.read", {"id": "obj_1"})
    first = post_stripe_event(client, event)
    replay = post_stripe_event(client, event)
    assert (first.json()["outcome"], replay.json()["outcome"]) == ("processed", "duplicate")
    assert read_first["reads"] == [("evt_r1", False)]  # no transaction open; the replay read nothing
    assert read_first["handled"] == ["read:evt_r1"]


def test_a_failed_read_is_503_and_claims_nothing_so_stripe_redelivers(client, read_first):
    client.raise_request_exception = False
    response = post_stripe_event(client, stripe_event("evt_r2", "test.read", {"unavailable": True}))
    assert response.status_code == 503 and response.json()["error"] == "provider_unavailable"
    assert not WebhookEvent.objects.exists() and read_first["handled"] == []
    redelivered = post_stripe_event(client, stripe_event("evt_r2", "test.read", {"unavailable": False}))
    assert redelivered.json()["outcome"] == "processed" and read_first["handled"] == ["read:evt_r2"]
