"""The Wise client (plain httpx): quotes, transfers, funding, cancel. Knows nothing of our models.

Wise facts it relies on (docs/ARCHITECTURE.md, "What the code relies on at the providers"):
- Flow: quote (POST /v3/profiles/{profileId}/quotes) -> transfer (POST /v1/transfers with
  targetAccount, quoteUuid, customerTransactionId) -> fund (POST .../transfers/{id}/payments).
- customerTransactionId (a UUID, built by payouts.keys.wise_transaction_id) is Wise's idempotency
  check for transfer creation: resending it after a timeout returns the transfer already made.
- Funding has no idempotency key: callers read the transfer and fund only one still waiting.
- Cancel works only before funds_converted; otherwise 409 transfer.cancellation.not.allowed.

Errors are split by what the caller may do next:
- WiseUnavailable (retryable): no answer, a dropped connection, 408/429 or 5xx, or an answer we
  cannot read. Wise may or may not have done the work: retry with the same customerTransactionId,
  read before funding again.
- WiseRefused (not retryable): any other 4xx, with Wise's own error code and message for a human.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from django.conf import settings

from core.provider_errors import ProviderCallError

Json = dict[str, Any]
WAITING_FOR_FUNDING = "incoming_payment_waiting"
FUNDING_COMPLETED = "COMPLETED"
RETRYABLE_STATUSES = frozenset({408, 429})


class WiseError(ProviderCallError):
    pass


class WiseUnavailable(WiseError):
    """No answer, 408/429 or a 5xx: Wise may or may not have done the work."""

    retryable = True


class WiseRefused(WiseError):
    """A 4xx: Wise understood and said no (e.g. 409 transfer.cancellation.not.allowed)."""

    retryable = False


@dataclass(frozen=True)
class WiseQuote:
    id: str


@dataclass(frozen=True)
class WiseTransfer:
    id: str
    status: str  # incoming_payment_waiting, processing, funds_converted, outgoing_payment_sent ...


@dataclass(frozen=True)
class WiseFunding:
    status: str  # COMPLETED, or e.g. REJECTED: Wise may answer 200 and still not fund
    error_code: str = ""

    @property
    def completed(self) -> bool:
        return self.status == FUNDING_COMPLETED


@dataclass(frozen=True, kw_only=True)
class WiseClient:
    base_url: str
    token: str
    profile_id: str
    timeout: float

    def create_quote(self, *, source_currency: str, target_currency: str, target_amount: Decimal) -> WiseQuote:
        body = {
            "sourceCurrency": source_currency,
            "targetCurrency": target_currency,
            "sourceAmount": None,
            "targetAmount": float(target_amount),
            "payOut": "BALANCE",
        }
        answer = self._call("POST", f"/v3/profiles/{self.profile_id}/quotes", body)
        return WiseQuote(id=_required(answer, "id", "create_quote"))

    def create_transfer(
        self, *, target_account: str, quote_id: str, customer_transaction_id: str, reference: str
    ) -> WiseTransfer:
        """Wise dedupes on customerTransactionId: resending it after a timeout returns the same transfer."""
        body = {
            "targetAccount": target_account,
            "quoteUuid": quote_id,
            "customerTransactionId": customer_transaction_id,
            "details": {"reference": reference},
        }
        return _transfer(self._call("POST", "/v1/transfers", body), "create_transfer")

    def get_transfer(self, *, transfer_id: str) -> WiseTransfer:
        return _transfer(self._call("GET", f"/v1/transfers/{transfer_id}"), "get_transfer")

    def fund_transfer(self, *, transfer_id: str) -> WiseFunding:
        """No idempotency key at Wise: callers read the transfer first and fund only a waiting one."""
        answer = self._call(
            "POST", f"/v3/profiles/{self.profile_id}/transfers/{transfer_id}/payments", {"type": "BALANCE"}
        )
        return WiseFunding(
            status=str(answer.get("status", FUNDING_COMPLETED)), error_code=str(answer.get("errorCode") or "")
        )

    def cancel_transfer(self, *, transfer_id: str) -> WiseTransfer:
        return _transfer(self._call("PUT", f"/v1/transfers/{transfer_id}/cancel"), "cancel_transfer")

    def _call(self, method: str, path: str, body: Json | None = None) -> Json:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        try:
            response = httpx.request(method, f"{self.base_url}{path}", json=body, headers=headers, timeout=self.timeout)
        except httpx.TransportError as exc:  # timeouts, refused and dropped connections
            raise WiseUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code in RETRYABLE_STATUSES:
            raise WiseUnavailable(f"{method} {path}: HTTP {response.status_code}", status=response.status_code)
        if response.status_code >= 400:
            code, message = _error_of(response)
            raise WiseRefused(message, status=response.status_code, code=code)
        try:
            answer = response.json()
        except ValueError as exc:
            raise WiseUnavailable(f"{method} {path}: the answer is not JSON") from exc
        if not isinstance(answer, dict):
            raise WiseUnavailable(f"{method} {path}: the answer is not a JSON object")
        return answer


def wise_client() -> WiseClient:
    """The client for the Wise account in settings (WISE_API_URL, WISE_API_TOKEN, WISE_PROFILE_ID)."""
    return WiseClient(
        base_url=settings.WISE_API_URL.rstrip("/"),
        token=settings.WISE_API_TOKEN,
        profile_id=str(settings.WISE_PROFILE_ID),
        timeout=settings.WISE_TIMEOUT_SECONDS,
    )


def _transfer(answer: Json, operation: str) -> WiseTransfer:
    return WiseTransfer(id=_required(answer, "id", operation), status=_required(answer, "status", operation))


def _required(answer: Json, name: str, operation: str) -> str:
    value = answer.get(name)
    if value is None or value == "":
        raise WiseUnavailable(f"{operation}: Wise answered without {name!r}.")
    return str(value)


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """Wise answers {"errors": [{"code", "message"}]} (or {"error", "error_description"} for auth)."""
    try:
        body = response.json()
    except ValueError:
        return f"http_{response.status_code}", response.text[:200]
    if isinstance(body, dict) and body.get("errors"):
        first = body["errors"][0]
        return str(first.get("code", "")), str(first.get("message", ""))
    if isinstance(body, dict) and "error" in body:
        return str(body["error"]), str(body.get("error_description") or body.get("message") or body["error"])
    return f"http_{response.status_code}", str(body)[:200]
