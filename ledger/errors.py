"""The ledger's error codes: why a posting was refused (nothing was written in any of these cases)."""

from django.db import models


class LedgerErrorCode(models.TextChoices):
    INVALID_AMOUNT = "invalid_amount"
    CURRENCY_MISMATCH = "currency_mismatch"
    SAME_ACCOUNT = "same_account"
    INVALID_ACCOUNT = "invalid_account"
    INVALID_KIND = "invalid_kind"
    INVALID_REFERENCE = "invalid_reference"
    INVALID_TRANSFER_ID = "invalid_transfer_id"
    TRANSFER_ID_REUSED = "transfer_id_reused"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    NOT_PENDING = "not_pending"
    EXCEEDS_PENDING_AMOUNT = "exceeds_pending_amount"
    PENDING_ALREADY_RESOLVED = "pending_already_resolved"
    TRANSFER_NOT_FOUND = "transfer_not_found"
