"""demo: the embedded demo's data (`manage.py seed_demo`), seeded by each domain app's own `demo.seed`.

Imports: the domain apps' demo modules (affiliates, payouts, pos_sync, loyalty). Nothing imports demo.
"""
