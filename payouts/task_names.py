"""Names of the payouts tasks that services enqueue (payouts.tasks registers them under these).

Services enqueue by name through core.enqueue: tasks import services, never the other way round.
"""

DISPATCH_WISE_TRANSFER = "payouts.tasks.dispatch_wise_transfer"
