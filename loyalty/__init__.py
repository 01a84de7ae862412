"""loyalty: the mirror of Stripe subscriptions, the one-time anniversary discount after 12 months
of Pro (a Stripe promotion code, exactly once), its revocation, and the "Loyalty Bonus" email.

Imports: core, audit, webhooks. It must not import the other domain apps, portal, demo or config.
"""
