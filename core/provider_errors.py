"""The one shape of an error from a provider's API (Stripe, Wise, Square), whatever the client.

Each client subclasses it once (StripeError, WiseError, SquareError) and then into "unavailable"
(the call may or may not have happened: retry with the same idempotency key) and "refused" (the
provider understood and said no). Callers decide on `retryable`, log `describe()`.
"""


class ProviderCallError(Exception):
    retryable = False

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def describe(self) -> str:
        status = f"HTTP {self.status}" if self.status else "no response"
        return f"{type(self).__name__} ({status}{', ' + self.code if self.code else ''}): {self.message}"
