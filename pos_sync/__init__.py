"""pos_sync: POS connections, restaurant orders, the sync queue, pushing orders to Square exactly
once through an at-least-once drain, dead letters, and the reconcile command.

Imports: core, audit. It must not import the other domain apps, portal, demo or config.
"""
