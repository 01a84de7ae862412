"""portal: the affiliate-facing pages and API (sign-in, dashboard, own commissions and payouts).

It reads the affiliates domain (tier, commissions) and the payouts domain (payouts, balance) and
requests payouts through the payouts service; it holds no business rule of its own.

Imports: affiliates, payouts, core. Nothing imports portal except config's URLconf.
"""
