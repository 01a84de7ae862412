"""The pos_sync app's error codes: what a SyncJob's last_error_code and the API's "error" say."""

from django.db import models


class PosSyncErrorCode(models.TextChoices):
    # Outcomes of a push (SyncJob.last_error_code).
    TIMEOUT = "timeout", "Timed out (outcome unknown)"
    PROVIDER_UNAVAILABLE = "provider_unavailable", "Provider unavailable (5xx, 429, connection lost)"
    PROVIDER_REJECTED = "provider_rejected", "Provider rejected the request (4xx)"
    UNKNOWN_PROVIDER = "unknown_provider", "Unknown provider"
    MISSING_CREDENTIALS = "missing_credentials", "Connection without token or location"
    INVALID_ORDER = "invalid_order", "Order cannot be sent"
    INTERNAL_ERROR = "internal_error", "Internal error"
    SEARCH_LIMIT_REACHED = "search_limit_reached", "Order search stopped at its page limit (nothing created)"
    # Service refusals.
    ORDER_NOT_CLOSED = "order_not_closed", "Order not closed"
    LIVE_JOB_EXISTS = "live_job_exists", "A live job exists"
    INVALID_ORDER_INPUT = "invalid_order_input", "Invalid order input"
    REFUND_COUNT_MISMATCH = "refund_count_mismatch", "Refunds planned differ from the number expected"
    RECONCILE_INCOMPLETE = "reconcile_incomplete", "A POS could not be read: nothing refunded"
