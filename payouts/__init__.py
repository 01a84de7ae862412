"""payouts: payout requests, super-admin review, the Wise transfer of an approved payout, and
Wise's settlement webhooks and sweepers.

Imports: core, audit, webhooks, and affiliates.models (the payee: the one declared edge between
domain apps). It must not import pos_sync, loyalty, portal, demo or config.
"""
