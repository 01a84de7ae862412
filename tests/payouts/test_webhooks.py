"""POST /api/wise/webhook/: signature, replays, out-of-order deliveries, concurrent duplicates."""

import base64
import json
import random
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core.management import call_command
from django.test import Client

from audit.models import AuditEntry, BeaconCount
from ledger.models import Transfer
from payouts.models import Payout
from payouts.selectors import available_balance
from tests.concurrency import race
from tests.payouts.helpers import api_json, deliver, funded_processing_payout, post_webhook, wise_time
from webhooks.models import WebhookEvent


def _settling_rows(payout: Payout) -> list[tuple[str, str]]:
    return list(
        AuditEntry.objects.filter(object_id=str(payout.pk))
        .exclude(target="processing")
        .values_list("target", "actor_label")
    )


@pytest.mark.django_db
def test_outgoing_payment_sent_marks_paid_and_five_replays_are_no_ops(wise, client):
    payout = funded_processing_payout()
    body, headers = wise.signed_delivery(payout.wise_transfer_id, "outgoing_payment_sent", wise_time(3))

    responses = [post_webhook(client, body, headers) for _ in range(6)]  # the delivery + 5 replays

    assert [r.status_code for r in responses] == [200] * 6
    assert [api_json(r)["outcome"] for r in responses] == ["applied"] + ["duplicate"] * 5
    payout.refresh_from_db()
    assert payout.status == "paid" and payout.wise_state == "outgoing_payment_sent"
    assert _settling_rows(payout) == [("paid", "system:webhook:wise")]
    assert WebhookEvent.objects.filter(provider="wise").count() == 1


@pytest.mark.django_db
def test_out_of_order_deliveries_make_one_transition_and_stale_ones_are_no_ops(wise, client):
    payout = funded_processing_payout()
    # Wise's order: processing (1) -> funds_converted (2) -> outgoing_payment_sent (3); delivered 3, 1, 2.
    outcomes = [
        api_json(deliver(client, wise, payout.wise_transfer_id, state, wise_time(minute)))["outcome"]
        for state, minute in [("outgoing_payment_sent", 3), ("processing", 1), ("funds_converted", 2)]
    ]
    assert outcomes == ["applied", "stale", "stale"]
    payout.refresh_from_db()
    assert (payout.status, payout.wise_state) == ("paid", "outgoing_payment_sent")
    assert _settling_rows(payout) == [("paid", "system:webhook:wise")]


@pytest.mark.django_db
def test_a_late_bounce_delivered_first_wins_over_the_older_sent(wise, client):
    # Wise's lifecycle: bounced_back is not final (it goes on to cancelled -> funds_refunded, or to a
    # success), so the newer bounce is recorded and the payout waits; the older sent is stale.
    payout = funded_processing_payout()
    transfer = payout.wise_transfer_id
    assert api_json(deliver(client, wise, transfer, "bounced_back", wise_time(60)))["outcome"] == "recorded"
    assert api_json(deliver(client, wise, transfer, "outgoing_payment_sent", wise_time(3)))["outcome"] == "stale"
    payout.refresh_from_db()
    assert (payout.status, payout.wise_state) == ("processing", "bounced_back")
    assert _settling_rows(payout) == []


@pytest.mark.django_db
def test_paid_never_goes_back_a_later_bounce_raises_a_beacon(wise, client):
    payout = funded_processing_payout()
    deliver(client, wise, payout.wise_transfer_id, "outgoing_payment_sent", wise_time(3))
    response = deliver(client, wise, payout.wise_transfer_id, "bounced_back", wise_time(60 * 24 * 20))
    assert (response.status_code, api_json(response)["outcome"]) == (200, "recorded")
    payout.refresh_from_db()
    assert (payout.status, payout.wise_state) == ("paid", "bounced_back")
    assert _settling_rows(payout) == [("paid", "system:webhook:wise")]
    assert BeaconCount.objects.get(kind="payout_failed_after_paid").count == 1
    # the money came back: the affiliate is credited again, once
    returned = Transfer.objects.get(pk=f"payout:{payout.pk}:attempt:1:returned")
    assert (returned.kind, returned.amount) == ("payout_returned", 31000)
    assert available_balance(affiliate=payout.affiliate, currency="EUR") == payout.amount
    call_command("check_ledger")


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["funds_refunded", "cancelled", "charged_back"])
def test_failure_states_mark_the_payout_failed(wise, client, state):
    payout = funded_processing_payout()
    assert deliver(client, wise, payout.wise_transfer_id, state, wise_time(5)).status_code == 200
    payout.refresh_from_db()
    assert payout.status == "failed" and state in payout.provider_status
    # the hold is released: the money is free to request again (or to retry)
    assert Transfer.objects.get(pending_id=f"payout:{payout.pk}:attempt:1:reserve").flag == "void_pending"
    call_command("check_ledger")


@pytest.mark.django_db
def test_bounced_back_is_recorded_on_the_attempt_and_is_not_final(wise, client):
    # bounced_back used to fail the payout; Wise documents it as a step towards cancelled /
    # funds_refunded, or back to a success: the payout stays processing and its hold stays held.
    payout = funded_processing_payout()
    response = deliver(client, wise, payout.wise_transfer_id, "bounced_back", wise_time(5))
    assert (response.status_code, api_json(response)["outcome"]) == (200, "recorded")
    payout.refresh_from_db()
    assert (payout.status, payout.wise_state) == ("processing", "bounced_back")
    assert payout.attempts.get().wise_state == "bounced_back"
    assert not Transfer.objects.filter(pending_id=f"payout:{payout.pk}:attempt:1:reserve").exists()
    assert _settling_rows(payout) == []


@pytest.mark.django_db
def test_bad_or_missing_signature_is_400_and_changes_nothing(wise, client):
    payout = funded_processing_payout()
    body, headers = wise.signed_delivery(payout.wise_transfer_id, "outgoing_payment_sent", wise_time(3))
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = base64.b64encode(other_key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()
    tampered = body.replace(b"outgoing_payment_sent", b"outgoing_payment_sen_")

    cases = [
        post_webhook(client, body, {}),  # unsigned
        post_webhook(client, body, {"X-Signature-SHA256": forged}),
        post_webhook(client, body, {"X-Signature-SHA256": "not base64!"}),
        post_webhook(client, tampered, headers),
    ]

    assert [r.status_code for r in cases] == [400] * 4
    assert {api_json(r)["error"] for r in cases} == {"invalid_signature"}
    payout.refresh_from_db()
    assert payout.status == "processing" and payout.wise_state == ""
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_no_public_key_configured_refuses_every_delivery(wise, client, settings):
    payout = funded_processing_payout()
    settings.WISE_WEBHOOK_PUBLIC_KEY = ""
    response = deliver(client, wise, payout.wise_transfer_id, "outgoing_payment_sent", wise_time(3))
    assert response.status_code == 400
    payout.refresh_from_db()
    assert payout.status == "processing"


@pytest.mark.django_db
def test_signed_but_malformed_or_foreign_events(wise, client):
    malformed = json.dumps({"event_type": "transfers#state-change", "data": {"resource": {}}}).encode()
    assert post_webhook(client, malformed, {"X-Signature-SHA256": wise.sign(malformed)}).status_code == 400
    other = json.dumps({"event_type": "balances#credit", "data": {}}).encode()
    response = post_webhook(client, other, {"X-Signature-SHA256": wise.sign(other)})
    assert (response.status_code, api_json(response)["outcome"]) == (200, "ignored")
    unknown = deliver(client, wise, "4242", "outgoing_payment_sent", wise_time(1))
    assert (unknown.status_code, api_json(unknown)["outcome"]) == (200, "unknown_transfer")


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_concurrent_duplicate_and_conflicting_deliveries_make_one_transition(wise):
    rng = random.Random(11)
    for round_no in range(15):
        payout = funded_processing_payout()
        sent = wise.signed_delivery(payout.wise_transfer_id, "outgoing_payment_sent", wise_time(3))
        bounced = wise.signed_delivery(payout.wise_transfer_id, "bounced_back", wise_time(2))  # older
        deliveries = [sent] * rng.randint(2, 4) + [bounced] * rng.randint(1, 3)
        clients = [Client() for _ in deliveries]

        outcomes = race(
            [
                lambda c=c, d=d: api_json(post_webhook(c, *d))["outcome"]
                for c, d in zip(clients, deliveries, strict=True)
            ]
        )

        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
        results = [o.result for o in outcomes]
        payout.refresh_from_db()
        rows = _settling_rows(payout)
        assert len(rows) == 1, (round_no, results, rows)
        # Whichever arrived first settled it; "paid never goes back" and the newest state is kept.
        assert payout.wise_state == "outgoing_payment_sent", (round_no, results)
        assert payout.status in ("paid", "failed")
        assert results.count("applied") == 1, (round_no, results)


@pytest.mark.django_db(transaction=True)
def test_end_to_end_the_stand_in_webhooks_settle_a_payout_over_http(wise, live_server):
    # given: the stand-in completes funded transfers by itself and calls our endpoint over HTTP
    wise.webhook_url, wise.auto_complete_seconds = f"{live_server.url}/api/wise/webhook/", 0.1
    try:
        payout = funded_processing_payout()
        deadline = time.monotonic() + 120  # generous: only a broken webhook path waits it out
        while time.monotonic() < deadline:
            payout.refresh_from_db()
            if payout.status != "processing" and len(wise.deliveries) == 3:
                break
            time.sleep(0.05)
    finally:
        wise.webhook_url, wise.auto_complete_seconds = "", 0
    # then: funds_converted was recorded, outgoing_payment_sent settled it; both deliveries verified
    assert (payout.status, payout.wise_state) == ("paid", "outgoing_payment_sent")
    assert [d["outcome"] for d in wise.deliveries] == [200, 200, 200]  # processing, converted, sent
    assert _settling_rows(payout) == [("paid", "system:webhook:wise")]
