"""core: what every app shares that is not the audit trail.

Owns the error hierarchy with its codes (errors.ErrorCode), the one DRF exception handler (plus
the JSON 404/500 handlers) and the schema of its error envelope (api_schema), the services'
`atomic()`, actors and the request/task correlation id, idempotency claims, the admin bases and
messages, `enqueue_on_commit`, the DRF permission `IsSuperAdmin` (permissions), and the currency
table.

Imports: Django, DRF (with drf-spectacular for the schema), Celery and the standard library only.
It must not import any other app of this project (audit, webhooks, the domain apps, portal,
config): everything above builds on it.
"""
