"""Handing a payout to the Celery dispatch task."""

import structlog
from kombu.exceptions import OperationalError

from audit.beacons import emit_beacon

logger = structlog.get_logger(__name__)


def enqueue_dispatch(*, payout_id: int) -> None:
    """Enqueue payouts.tasks.dispatch_wise_transfer. Runs after commit: if the broker is down the
    approval stands and the beat sweeper (redispatch_stuck_payouts) enqueues it later."""
    from payouts.tasks import dispatch_wise_transfer_task  # tasks import the services package

    try:
        dispatch_wise_transfer_task.delay(payout_id)
    except OperationalError:
        logger.exception("payout_dispatch_enqueue_failed", payout_id=payout_id)
        emit_beacon("payout_enqueue_failed", object_id=payout_id)
