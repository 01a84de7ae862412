"""core: what every app shares that is not the audit trail.

Owns the error hierarchy and the one DRF exception handler (plus the JSON 404/500 handlers), the
services' `atomic()`, actors and the request/task correlation id, idempotency claims, the admin
bases and messages, `enqueue_on_commit`, the DRF permission `IsSuperAdmin`, and the currency table.

Imports: Django, DRF, Celery and the standard library only. It must not import any other app of
this project (audit, webhooks, the domain apps, portal, config): everything above builds on it.
"""
