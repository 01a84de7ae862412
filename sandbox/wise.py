"""The Wise stand-in: quotes, transfers, funding, cancel, and signed `transfers#state-change` webhooks.

Behaves like Wise where our safety depends on it:
- POST /v1/transfers dedupes on customerTransactionId (same id -> the same transfer), and a quote
  can back one transfer only;
- funding (POST .../payments) has no idempotency key: it is refused unless the transfer still
  waits for funding;
- PUT /v1/transfers/{id}/cancel is refused with 409 transfer.cancellation.not.allowed once the
  funds are converted;
- webhooks are signed RSA-SHA256 over the raw body, base64 in X-Signature-SHA256.

Control (besides the shared /__sandbox__/ endpoints):
    POST /__wise__/transfers/{id}/state  {"status": "outgoing_payment_sent"}  move a transfer (sends a webhook)
In process, tests call `advance(transfer_id, status)`, `signed_delivery(...)` and `hold(...)`
(park matching requests before any work is done, e.g. to kill the client mid-dispatch).
"""

import base64
import json
import os
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sandbox.core import Json, Request, StandIn

WAITING = "incoming_payment_waiting"
CANCELLABLE = {WAITING, "processing"}
STATES = {
    WAITING,
    "processing",
    "funds_converted",
    "outgoing_payment_sent",
    "bounced_back",
    "funds_refunded",
    "cancelled",
    "charged_back",
}


@dataclass
class Hold:
    """Requests matching (method, path) wait here before any work; once released they are dropped
    with a 503, as if the client had died before Wise processed them."""

    method: str
    path: str
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


DEMO_KEY_FILE = Path(__file__).resolve().parent.parent / "var" / "wise_standin_key.pem"


class WiseStandIn(StandIn):
    name = "wise"
    ROUTES = [
        ("POST", r"/v3/profiles/(?P<profile>[^/]+)/quotes", "create_quote"),
        ("POST", r"/v1/transfers", "create_transfer"),
        ("GET", r"/v1/transfers/(?P<id>\d+)", "get_transfer"),
        ("PUT", r"/v1/transfers/(?P<id>\d+)/cancel", "cancel_transfer"),
        ("POST", r"/v3/profiles/(?P<profile>[^/]+)/transfers/(?P<id>\d+)/payments", "fund_transfer"),
        ("POST", r"/__wise__/transfers/(?P<id>\d+)/state", "control_state"),
    ]

    def __init__(
        self,
        *,
        token: str | None = None,
        profile_id: str | None = None,
        private_key_pem: bytes | None = None,
        webhook_url: str | None = None,
        auto_complete_seconds: float | None = None,
    ) -> None:
        env = os.environ
        self.token = token or env.get("WISE_API_TOKEN", "wise-sandbox-token")
        self.profile_id = str(profile_id or env.get("WISE_PROFILE_ID", "1001"))
        self.private_key = serialization.load_pem_private_key(private_key_pem or demo_private_key(), password=None)
        default_hook = f"http://127.0.0.1:{env.get('PORT', '8000')}/api/wise/webhook/"
        self.webhook_url = webhook_url if webhook_url is not None else env.get("WISE_STANDIN_WEBHOOK_URL", default_hook)
        if auto_complete_seconds is None:
            auto_complete_seconds = float(env.get("WISE_STANDIN_AUTO_COMPLETE_SECONDS", "5"))
        self.auto_complete_seconds = auto_complete_seconds
        super().__init__()

    @property
    def public_key_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    # --- state ------------------------------------------------------------------------------
    def reset_state(self) -> None:
        for held in getattr(self, "holds", []):
            held.release()
        self.quotes: dict[str, Json] = {}
        self.transfers: dict[int, Json] = {}
        self.by_customer_id: dict[str, int] = {}
        self.fundings: list[Json] = []
        self.cancellations: list[Json] = []
        self.deliveries: list[Json] = []
        self.holds: list[Hold] = []
        self._next_transfer = 50_000_000

    def state(self) -> Json:
        with self.lock:
            return {
                "quotes": list(self.quotes.values()),
                "transfers": list(self.transfers.values()),
                "fundings": list(self.fundings),
                "cancellations": list(self.cancellations),
                "webhook_deliveries": len(self.deliveries),
                "webhook_public_key": self.public_key_pem,
            }

    def authorized(self, request: Request) -> bool:
        if request.path.startswith("/__wise__/"):
            return True
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    def error_body(self, status: int, code: str, message: str) -> Json:
        return {"errors": [{"code": code, "message": message, "arguments": []}]}

    def route(self, request: Request) -> tuple[int, Json]:
        held = next(
            (h for h in list(self.holds) if h.method == request.method and re.search(h.path, request.path)), None
        )
        if held is not None:
            held.reached.set()
            held.released.wait(timeout=60)
            return 503, self.error_body(503, "SERVICE_UNAVAILABLE", "held and dropped by the sandbox")
        return super().route(request)

    def hold(self, method: str, path_regex: str) -> Hold:
        held = Hold(method, path_regex)
        with self.lock:
            self.holds.append(held)
        return held

    # --- endpoints ------------------------------------------------------------------------
    def create_quote(self, request: Request) -> tuple[int, Json]:
        if request.match["profile"] != self.profile_id:
            return 403, self.error_body(403, "profile.not.found", "Unknown profile.")
        body = _json(request)
        problem = _quote_problem(body)
        if problem:
            return 422, self.error_body(422, "quote.invalid", problem)
        amount = body.get("targetAmount") or body.get("sourceAmount")
        quote = {
            "id": str(uuid.uuid4()),
            "profile": int(self.profile_id) if self.profile_id.isdigit() else self.profile_id,
            "sourceCurrency": body["sourceCurrency"],
            "targetCurrency": body["targetCurrency"],
            "sourceAmount": amount,
            "targetAmount": amount,
            "rate": 1.0,
            "payOut": body.get("payOut", "BALANCE"),
            "status": "PENDING",
            "createdTime": _now(),
        }
        with self.lock:
            self.quotes[quote["id"]] = quote
        return 200, quote

    def create_transfer(self, request: Request) -> tuple[int, Json]:
        body = _json(request)
        problem = _transfer_problem(body)
        if problem:
            return 422, self.error_body(422, "transfer.invalid", problem)
        with self.lock:
            existing = self.by_customer_id.get(body["customerTransactionId"])
            if existing is not None:  # Wise's idempotency check: the same id returns the same transfer
                return 200, dict(self.transfers[existing])
            quote = self.quotes.get(body["quoteUuid"])
            if quote is None:
                return 422, self.error_body(422, "quote.not.found", "Unknown quoteUuid.")
            if any(t["quoteUuid"] == quote["id"] for t in self.transfers.values()):
                return 422, self.error_body(422, "quote.already.used", "This quote already has a transfer.")
            transfer = self._new_transfer(body, quote)
        return 200, dict(transfer)

    def get_transfer(self, request: Request) -> tuple[int, Json]:
        with self.lock:
            transfer = self.transfers.get(int(request.match["id"]))
            if transfer is None:
                return 404, self.error_body(404, "transfer.not.found", "No such transfer.")
            return 200, dict(transfer)

    def fund_transfer(self, request: Request) -> tuple[int, Json]:
        if request.match["profile"] != self.profile_id:
            return 403, self.error_body(403, "profile.not.found", "Unknown profile.")
        if _json(request).get("type") != "BALANCE":
            return 422, self.error_body(422, "payment.type.invalid", "Only type BALANCE is supported.")
        with self.lock:
            transfer = self.transfers.get(int(request.match["id"]))
            if transfer is None:
                return 404, self.error_body(404, "transfer.not.found", "No such transfer.")
            if transfer["status"] != WAITING:
                return 409, self.error_body(
                    409, "transfer.not.waiting.for.funding", f"Transfer is {transfer['status']}, not {WAITING}."
                )
            self.fundings.append({"transferId": transfer["id"], "type": "BALANCE", "at": _now()})
            self._move(transfer, "processing")
        self._schedule_completion(transfer["id"])
        return 201, {"type": "BALANCE", "status": "COMPLETED", "errorCode": None}

    def cancel_transfer(self, request: Request) -> tuple[int, Json]:
        with self.lock:
            transfer = self.transfers.get(int(request.match["id"]))
            if transfer is None:
                return 404, self.error_body(404, "transfer.not.found", "No such transfer.")
            if transfer["status"] == "cancelled":
                return 200, dict(transfer)
            if transfer["status"] not in CANCELLABLE:
                return 409, self.error_body(
                    409,
                    "transfer.cancellation.not.allowed",
                    f"Transfer {transfer['id']} can no longer be cancelled: it is {transfer['status']}.",
                )
            self.cancellations.append({"transferId": transfer["id"], "at": _now()})
            self._move(transfer, "cancelled")
            return 200, dict(transfer)

    def control_state(self, request: Request) -> tuple[int, Json]:
        status = _json(request).get("status")
        if status not in STATES:
            return 422, self.error_body(422, "state.invalid", f"Unknown status {status!r}.")
        transfer = self.advance(int(request.match["id"]), status)
        return (200, transfer) if transfer else (404, self.error_body(404, "transfer.not.found", "No such transfer."))

    # --- in-process control ---------------------------------------------------------------
    def advance(self, transfer_id: int | str, status: str) -> Json | None:
        """Move a transfer to `status` as Wise would (and send the webhook if a URL is set)."""
        with self.lock:
            transfer = self.transfers.get(int(transfer_id))
            if transfer is None:
                return None
            self._move(transfer, status)
            return dict(transfer)

    def signed_delivery(self, transfer_id: int | str, status: str, occurred_at: str, previous: str = "") -> tuple:
        """(raw body, headers) of a `transfers#state-change` delivery, signed with our private key."""
        event = {
            "data": {
                "resource": {
                    "type": "transfer",
                    "id": int(transfer_id),
                    "profile_id": self.profile_id,
                    "account_id": 0,
                },
                "current_state": status,
                "previous_state": previous,
                "occurred_at": occurred_at,
            },
            "subscription_id": "sandbox-subscription",
            "event_type": "transfers#state-change",
            "schema_version": "2.0.0",
            "sent_at": _now(),
        }
        body = json.dumps(event).encode()
        return body, {"X-Signature-SHA256": self.sign(body), "X-Delivery-Id": str(uuid.uuid4())}

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self.private_key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()

    def transfers_for(self, customer_transaction_id: str) -> list[Json]:
        with self.lock:
            return [t for t in self.transfers.values() if t["customerTransactionId"] == customer_transaction_id]

    # --- internals ------------------------------------------------------------------------
    def _new_transfer(self, body: Json, quote: Json) -> Json:
        self._next_transfer += 1
        transfer = {
            "id": self._next_transfer,
            "targetAccount": body["targetAccount"],
            "quoteUuid": quote["id"],
            "customerTransactionId": body["customerTransactionId"],
            "status": WAITING,
            "reference": (body.get("details") or {}).get("reference", ""),
            "sourceCurrency": quote["sourceCurrency"],
            "sourceValue": quote["sourceAmount"],
            "targetCurrency": quote["targetCurrency"],
            "targetValue": quote["targetAmount"],
            "created": _now(),
            "history": [{"status": WAITING, "at": _now()}],
        }
        self.transfers[transfer["id"]] = transfer
        self.by_customer_id[transfer["customerTransactionId"]] = transfer["id"]
        return transfer

    def _move(self, transfer: Json, status: str) -> None:
        previous, transfer["status"] = transfer["status"], status
        occurred_at = _now()
        transfer["history"].append({"status": status, "at": occurred_at})
        if self.webhook_url:
            body, headers = self.signed_delivery(transfer["id"], status, occurred_at, previous)
            threading.Thread(target=self._deliver, args=(body, headers), daemon=True).start()

    def _deliver(self, body: bytes, headers: dict[str, str]) -> None:
        try:
            response = httpx.post(
                self.webhook_url, content=body, headers={**headers, "Content-Type": "application/json"}, timeout=10
            )
            outcome: Any = response.status_code
        except httpx.HTTPError as exc:
            outcome = repr(exc)
        with self.lock:
            self.deliveries.append({"body": json.loads(body), "outcome": outcome})

    def _schedule_completion(self, transfer_id: int) -> None:
        if self.auto_complete_seconds <= 0:
            return
        for step, status in enumerate(("funds_converted", "outgoing_payment_sent"), start=1):
            timer = threading.Timer(self.auto_complete_seconds * step, self._complete, args=(transfer_id, status))
            timer.daemon = True
            timer.start()

    def _complete(self, transfer_id: int, status: str) -> None:
        with self.lock:
            transfer = self.transfers.get(transfer_id)
            if transfer is not None and transfer["status"] not in ("cancelled", "outgoing_payment_sent"):
                self._move(transfer, status)


def _json(request: Request) -> Json:
    try:
        body = request.json
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _quote_problem(body: Json) -> str:
    for key in ("sourceCurrency", "targetCurrency"):
        value = body.get(key)
        if not isinstance(value, str) or len(value) != 3 or not value.isupper():
            return f"{key} must be an ISO 4217 code."
    amounts = [body.get("sourceAmount"), body.get("targetAmount")]
    given = [a for a in amounts if a is not None]
    if len(given) != 1:
        return "Give exactly one of sourceAmount and targetAmount."
    if not isinstance(given[0], int | float) or given[0] <= 0:
        return "The amount must be a positive number."
    return ""


def _transfer_problem(body: Json) -> str:
    for key in ("targetAccount", "quoteUuid", "customerTransactionId"):
        if body.get(key) in (None, ""):
            return f"{key} is required."
    try:
        uuid.UUID(str(body["customerTransactionId"]))
    except ValueError:
        return "customerTransactionId must be a UUID."
    return ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def demo_public_key_file() -> Path:
    """Make sure the demo keypair exists and return the public half's file (for WISE_WEBHOOK_PUBLIC_KEY)."""
    demo_private_key()
    return _demo_key_file().with_name("wise_standin_public.pem")


def demo_private_key() -> bytes:
    """The demo's key, kept in var/ (or WISE_STANDIN_KEY_FILE) so a restarted stand-in signs with the
    key the site trusts; its public half is (re)written next to it."""
    key_file = _demo_key_file()
    if not key_file.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    pem = key_file.read_bytes()
    public_file = key_file.with_name("wise_standin_public.pem")
    if not public_file.exists():
        public = serialization.load_pem_private_key(pem, password=None).public_key()
        public_file.write_bytes(
            public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    return pem


def _demo_key_file() -> Path:
    return Path(os.environ.get("WISE_STANDIN_KEY_FILE") or DEMO_KEY_FILE)
