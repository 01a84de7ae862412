"""Names of the affiliates tasks that services enqueue (affiliates.tasks registers them under these).

Services enqueue by name through core.enqueue: tasks import services, never the other way round.
"""

EVALUATE_TIER = "affiliates.tasks.evaluate_tier"
MATCH_ADJUSTMENT_INVOICE = "affiliates.tasks.match_adjustment_invoice"
