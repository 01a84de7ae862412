"""portal: the affiliate-facing pages and API (sign-in, dashboard, own commissions and payouts).

It reads the affiliates domain (tier, commissions, when a commission becomes payable), the payouts
domain (payouts), the books (ledger: the balance per currency) and the audit trail (when a payout
was paid or rejected, and why), and requests payouts through the payouts service; it holds no
business rule of its own. Its pages show their own friendly 404/403/500, DEBUG or not
(portal.error_pages).

Imports: affiliates, payouts, ledger, audit, core. Nothing imports portal except config's URLconf.
"""
