"""core: what every app shares that is not the audit trail.

Owns the error hierarchy with its codes (errors.ErrorCode), the one DRF exception handler (plus
the JSON 404/500 handlers) and the schema of its error envelope (api_schema), the services'
`atomic()`, actors and the request/task correlation id, idempotency claims (leased by the
database's clock, renewable) and how long a lease must be (leases: one worst-case function for
every provider), the admin bases, messages and change-page links by model name (admin_links),
`enqueue_on_commit`, the signals that let lower or independent layers reach audit without
importing it (signals), who counts as a
super-admin and the DRF permissions `IsSuperAdmin` and `ActorAuthority` (permissions), the
currency table, and the one construction of the Stripe SDK client with our translation of its
errors (stripe_client; each app's clients/stripe.py keeps only its own calls), the list of
credentials this repository publishes (published_defaults: the demo's, refused everywhere else)
and `manage.py add_totp_device` (an admin user's second factor).

Imports: Django, DRF (with drf-spectacular for the schema), Celery, the Stripe SDK, django-otp and
the standard library only.
It must not import any other app of this project (audit, webhooks, the domain apps, portal,
config): everything above builds on it.
"""
