"""The Wise HTTP client: quotes, transfers, funding, cancel. Knows nothing about our models.

Errors are split by what the caller may do next: WiseUnavailable (timeout, dropped connection,
5xx) means "the outcome is unknown, retry with the same customerTransactionId / read first";
WiseRefused (4xx) carries Wise's own error code and message, to show to a human.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from django.conf import settings

Json = dict[str, Any]
WAITING_FOR_FUNDING = "incoming_payment_waiting"


class WiseError(Exception):
    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class WiseUnavailable(WiseError):
    """No answer, or a 5xx: Wise may or may not have done the work."""


class WiseRefused(WiseError):
    """A 4xx: Wise understood and said no (e.g. 409 transfer.cancellation.not.allowed)."""


@dataclass(frozen=True)
class WiseClient:
    base_url: str
    token: str
    profile_id: str
    timeout: float

    @classmethod
    def from_settings(cls) -> "WiseClient":
        return cls(
            base_url=settings.WISE_API_URL.rstrip("/"),
            token=settings.WISE_API_TOKEN,
            profile_id=str(settings.WISE_PROFILE_ID),
            timeout=settings.WISE_TIMEOUT_SECONDS,
        )

    def create_quote(self, *, source_currency: str, target_currency: str, target_amount: Decimal) -> Json:
        body = {
            "sourceCurrency": source_currency,
            "targetCurrency": target_currency,
            "sourceAmount": None,
            "targetAmount": float(target_amount),
            "payOut": "BALANCE",
        }
        return self._call("POST", f"/v3/profiles/{self.profile_id}/quotes", body)

    def create_transfer(
        self, *, target_account: str, quote_id: str, customer_transaction_id: str, reference: str
    ) -> Json:
        """Wise dedupes on customerTransactionId: resending it after a timeout returns the same transfer."""
        body = {
            "targetAccount": target_account,
            "quoteUuid": quote_id,
            "customerTransactionId": customer_transaction_id,
            "details": {"reference": reference},
        }
        return self._call("POST", "/v1/transfers", body)

    def get_transfer(self, transfer_id: str) -> Json:
        return self._call("GET", f"/v1/transfers/{transfer_id}")

    def fund_transfer(self, transfer_id: str) -> Json:
        """No idempotency key at Wise: callers read the transfer first and fund only a waiting one."""
        return self._call(
            "POST", f"/v3/profiles/{self.profile_id}/transfers/{transfer_id}/payments", {"type": "BALANCE"}
        )

    def cancel_transfer(self, transfer_id: str) -> Json:
        return self._call("PUT", f"/v1/transfers/{transfer_id}/cancel")

    def _call(self, method: str, path: str, body: Json | None = None) -> Json:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        try:
            response = httpx.request(method, f"{self.base_url}{path}", json=body, headers=headers, timeout=self.timeout)
        except httpx.TransportError as exc:  # timeouts, refused and dropped connections
            raise WiseUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise WiseUnavailable(f"{method} {path}: HTTP {response.status_code}", status=response.status_code)
        if response.status_code >= 400:
            code, message = _error_of(response)
            raise WiseRefused(message, status=response.status_code, code=code)
        try:
            return response.json()
        except ValueError as exc:
            raise WiseUnavailable(f"{method} {path}: the answer is not JSON") from exc


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
