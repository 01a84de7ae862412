"""ledger: the books. The single source of truth for money amounts.

Owns accounts (one per kind, owner and currency), immutable double-entry transfers with
TigerBeetle's guarantees carried into PostgreSQL (at most one transfer per caller-given id, a
replay returns the original; two-phase reserve / post / void, each pending transfer resolved at
most once; an affiliate's payable account is never debited beyond its credits except by a
reversal), the balance selectors (balance, available, statement, trial balance) and `check_ledger`.

Imports: core only (core.errors, core.currencies, core.transactions, core.admin_base,
core.admin_links, core.signals) plus Django. It must not import audit, webhooks, the domain apps,
portal or config: they post through ledger.services and read through ledger.selectors, never the
other way round. A failed check reaches audit's alerts as core.signals.beacon_requested.
"""
