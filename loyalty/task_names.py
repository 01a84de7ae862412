"""Names of the loyalty tasks that services enqueue (loyalty.tasks registers them under these).

Services enqueue by name through core.enqueue: tasks import services, never the other way round.
"""

SEND_LOYALTY_EMAIL = "loyalty.tasks.send_loyalty_email"
CLOSE_REVOKED_CODE = "loyalty.tasks.close_revoked_code"
