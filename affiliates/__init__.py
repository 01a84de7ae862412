"""affiliates: referrals, commissions created exactly once from Stripe webhooks, and tiers
(optimistic-concurrency evaluation, tier events).

Imports: core, audit, webhooks. It must not import payouts (payouts depends on affiliates, not
the other way round), pos_sync, loyalty, portal, demo or config.
"""
