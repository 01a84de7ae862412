"""The Wise stand-in behaves like Wise where our safety depends on it (no database needed)."""

import base64
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from payouts.clients.wise import WiseClient, WiseRefused, WiseTransfer, WiseUnavailable
from sandbox.core import RunningStandIn, StandIn

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(wise_server, wise) -> WiseClient:
    return WiseClient(base_url=wise_server.url, token=wise.token, profile_id=wise.profile_id, timeout=5)


def _quote(client: WiseClient) -> str:
    return client.create_quote(source_currency="EUR", target_currency="EUR", target_amount=Decimal(10)).id


def _transfer(client: WiseClient, customer_id: str | None = None, quote_id: str | None = None) -> WiseTransfer:
    quote_id = quote_id or _quote(client)
    return client.create_transfer(
        target_account="rcpt-1",
        quote_id=quote_id,
        customer_transaction_id=customer_id or str(uuid.uuid4()),
        reference="t",
    )


def test_requests_need_the_bearer_token(wise_server, wise):
    response = httpx.get(f"{wise_server.url}/v1/transfers/1")
    assert response.status_code == 401
    bad = WiseClient(base_url=wise_server.url, token="wrong", profile_id=wise.profile_id, timeout=5)
    with pytest.raises(WiseRefused) as caught:
        bad.get_transfer(transfer_id="1")
    assert caught.value.status == 401
    assert len(wise.requests) == 2  # every request is recorded, refused ones included


def test_quote_validation(client, wise_server, wise):
    headers = {"Authorization": f"Bearer {wise.token}"}
    url = f"{wise_server.url}/v3/profiles/{wise.profile_id}/quotes"
    both = {"sourceCurrency": "EUR", "targetCurrency": "EUR", "sourceAmount": 1, "targetAmount": 1}
    assert httpx.post(url, json=both, headers=headers).status_code == 422
    assert httpx.post(url, json={"targetAmount": 1}, headers=headers).status_code == 422
    assert httpx.post(f"{wise_server.url}/v3/profiles/999/quotes", json=both, headers=headers).status_code == 403
    assert wise.quotes == {}


def test_same_customer_transaction_id_returns_the_same_transfer(client, wise):
    customer_id = str(uuid.uuid4())
    first = _transfer(client, customer_id)
    again = _transfer(client, customer_id)  # even with a new quote: Wise dedupes on the id
    assert first.id == again.id
    assert len(wise.transfers) == 1


def test_one_transfer_per_quote_and_the_id_must_be_a_uuid(client, wise):
    quote_id = _quote(client)
    _transfer(client, quote_id=quote_id)
    with pytest.raises(WiseRefused) as used:
        _transfer(client, quote_id=quote_id)
    assert used.value.code == "quote.already.used"
    with pytest.raises(WiseRefused) as bad:
        _transfer(client, customer_id="not-a-uuid")
    assert bad.value.code == "transfer.invalid"
    assert len(wise.transfers) == 1


def test_funding_is_refused_unless_the_transfer_waits_for_funding(client, wise):
    transfer = _transfer(client)
    assert client.fund_transfer(transfer_id=transfer.id).completed
    with pytest.raises(WiseRefused) as caught:
        client.fund_transfer(transfer_id=transfer.id)
    assert caught.value.status == 409
    assert len(wise.fundings) == 1
    assert client.get_transfer(transfer_id=transfer.id).status == "processing"


def test_cancel_works_until_funds_are_converted(client, wise):
    early, late = _transfer(client), _transfer(client)
    assert client.cancel_transfer(transfer_id=early.id).status == "cancelled"
    wise.advance(late.id, "funds_converted")
    with pytest.raises(WiseRefused) as caught:
        client.cancel_transfer(transfer_id=late.id)
    assert (caught.value.status, caught.value.code) == (409, "transfer.cancellation.not.allowed")


def test_faults_surface_as_wise_unavailable(client, wise):
    wise.add_fault(method="POST", path=r"/quotes$", mode="error_500")
    with pytest.raises(WiseUnavailable):
        client.create_quote(source_currency="EUR", target_currency="EUR", target_amount=Decimal(1))
    wise.add_fault(method="GET", path=r"^/v1/transfers/", mode="drop_connection")
    with pytest.raises(WiseUnavailable):
        client.get_transfer(transfer_id="1")


class Receiver(StandIn):
    name = "receiver"
    ROUTES = [("POST", r"/hook", "hook")]

    def hook(self, request):
        return 200, {}


def test_state_changes_are_delivered_signed_with_the_private_key(wise, client):
    receiver = RunningStandIn(Receiver())
    try:
        wise.webhook_url = f"{receiver.url}/hook"
        transfer = _transfer(client)
        wise.advance(transfer.id, "outgoing_payment_sent")
        deadline = time.monotonic() + 120  # generous: only a delivery that never comes waits it out
        while time.monotonic() < deadline:
            if receiver.app.requests:
                break
            time.sleep(0.05)
    finally:
        wise.webhook_url = ""
        receiver.stop()
    [delivery] = receiver.app.requests
    assert delivery.body["event_type"] == "transfers#state-change"
    assert delivery.body["data"]["current_state"] == "outgoing_payment_sent"
    assert str(delivery.body["data"]["resource"]["id"]) == transfer.id
    # The receiver keeps the parsed body; json.dumps gives back the exact bytes the stand-in signed.
    raw = json.dumps(delivery.body).encode()
    public_key = serialization.load_pem_public_key(wise.public_key_pem.encode())
    public_key.verify(
        base64.b64decode(delivery.headers["X-Signature-SHA256"]), raw, padding.PKCS1v15(), hashes.SHA256()
    )


def test_python_m_sandbox_wise_serves_the_stand_in(tmp_path):
    env = {**os.environ, "WISE_STANDIN_KEY_FILE": str(tmp_path / "key.pem")}
    with socket.socket() as probe:  # a free port (--port 0 would mean "the default", 8101)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "wise", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.strip() == f"wise stand-in on http://127.0.0.1:{port}"
        url = line.split(" on ")[1].strip()
        state = httpx.get(f"{url}/__sandbox__/state").json()
        assert state["transfers"] == [] and "BEGIN PUBLIC KEY" in state["webhook_public_key"]
        assert (tmp_path / "wise_standin_public.pem").read_text() == state["webhook_public_key"]
    finally:
        process.terminate()
        process.wait(timeout=60)
