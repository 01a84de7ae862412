"""Every write of the pos_sync app. Import from here: `from pos_sync import services`."""

from pos_sync.services.drain import DRAIN_ACTOR, DrainResult, drain_due_jobs, push_due_jobs, push_job, take_due_jobs
from pos_sync.services.orders import close_order, place_order, void_order
from pos_sync.services.queue import enqueue_sync_job, requeue_sync_job
from pos_sync.services.reconcile import ConnectionReconcile, reconcile_connection, refund_duplicates

__all__ = [
    "DRAIN_ACTOR",
    "ConnectionReconcile",
    "DrainResult",
    "close_order",
    "drain_due_jobs",
    "enqueue_sync_job",
    "place_order",
    "push_due_jobs",
    "push_job",
    "reconcile_connection",
    "refund_duplicates",
    "requeue_sync_job",
    "take_due_jobs",
    "void_order",
]
