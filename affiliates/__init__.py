"""affiliates: referrals, commissions created exactly once from Stripe webhooks, their postings in
the books (earned on approval, reversed by refunds and lost disputes, in any delivery order),
Stripe's refunds and disputes (StripeAdjustment), and tiers (optimistic-concurrency evaluation,
tier events).

Imports: core, audit, webhooks, ledger (services to post, models for kinds). It must not import
payouts (payouts depends on affiliates, not the other way round), pos_sync, loyalty, portal, demo or config.
"""
