"""webhooks: provider webhook ingress shared by the domain apps.

Owns the Stripe endpoint (signature check with the SDK, an optional read at Stripe before the claim
that a handler asks for with `read_first=`, event-id claim, handler registry that the domain apps
register into), the generic provider-event dedupe (`claim_webhook_event`) and the
refusal codes (errors.WebhookErrorCode) that the Wise webhook uses too.

Imports: core only (and Django, DRF, the Stripe SDK). It must not import audit's internals, any
domain app, portal or config: domain apps register their handlers with `@on_stripe_event`.
"""
