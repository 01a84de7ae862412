"""The one error hierarchy that services raise.

The DRF exception handler (core.api_errors) maps each class to its HTTP status with a JSON body
`{"error": <code>, ...}`; the admin maps the same exceptions to messages; commands print them and
exit non-zero.
"""

from typing import Any

from django.db import models


class ErrorCode(models.TextChoices):
    """The hierarchy's default codes and the codes core itself answers; each app that raises more
    specific ones has its own enum (audit.errors, webhooks.errors, payouts.errors ...)."""

    CONFLICT = "conflict"
    ILLEGAL_TRANSITION = "illegal_transition"
    NOT_FOUND = "not_found"
    PERMISSION_DENIED = "permission_denied"
    VALIDATION_ERROR = "validation_error"
    BUSINESS_RULE = "business_rule"
    NOT_AUTHENTICATED = "not_authenticated"
    SERVER_ERROR = "server_error"
    INVALID_CLAIM_KEY = "invalid_claim_key"
    # core.currencies
    UNKNOWN_CURRENCY = "unknown_currency"
    INVALID_AMOUNT = "invalid_amount"
    TOO_MANY_DECIMALS = "too_many_decimals"


class DomainError(Exception):
    status_code = 400
    default_code: str = ErrorCode.VALIDATION_ERROR

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = str(code or self.default_code)
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.message, **self.details}


class ValidationError(DomainError):
    """Malformed or unknown input: nothing was read or written on its account."""

    status_code = 400
    default_code = ErrorCode.VALIDATION_ERROR


class PermissionDenied(DomainError):
    status_code = 403
    default_code = ErrorCode.PERMISSION_DENIED


class NotFound(DomainError):
    status_code = 404
    default_code = ErrorCode.NOT_FOUND


class Conflict(DomainError):
    """The row is no longer in the state the actor acted on: someone else changed it first."""

    status_code = 409
    default_code = ErrorCode.CONFLICT


class IllegalTransition(DomainError):
    """The state machine forbids this move from the state the actor saw."""

    status_code = 422
    default_code = ErrorCode.ILLEGAL_TRANSITION


class BusinessRuleViolation(DomainError):
    """Well-formed input that a business rule refuses (insufficient balance, KYC not verified)."""

    status_code = 422
    default_code = ErrorCode.BUSINESS_RULE
