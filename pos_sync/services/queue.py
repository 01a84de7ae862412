"""The sync queue's entrances: enqueue an order for a provider, requeue a dead letter."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.transitions import apply_transition
from core.actors import Actor, actor_label
from core.errors import BusinessRuleViolation, NotFound
from core.transactions import atomic
from pos_sync import selectors
from pos_sync.errors import PosSyncErrorCode
from pos_sync.models import Order, OrderStatus, SyncJob, SyncJobStatus

ENQUEUE_TRIES = 3


def enqueue_sync_job(*, order_id: int, actor: Actor, provider: str | None = None) -> tuple[SyncJob, bool]:
    """The live job for (order, provider), created if there is none: returns (job, created).

    Database uniqueness: the partial UNIQUE (order, provider) WHERE status IN (pending, failed)
    decides between concurrent callers. A loser's INSERT waits for the winner's commit, fails with
    IntegrityError inside its own savepoint (so the caller's transaction stays usable), and gets
    the winner's job back: "already queued" is an answer, not an error. If that job finished in
    the meantime, the pair has no live job again and the insert is retried.
    """
    order = Order.objects.select_related("connection").filter(pk=order_id).first()
    if order is None:
        raise NotFound(f"Order #{order_id} does not exist.")
    if order.status != OrderStatus.CLOSED:
        raise BusinessRuleViolation(
            f"Order #{order_id} is {order.status}: only closed orders are sent to the POS.",
            code=PosSyncErrorCode.ORDER_NOT_CLOSED,
        )
    provider = provider or order.connection.provider
    with atomic():
        for _ in range(ENQUEUE_TRIES):
            try:
                with transaction.atomic():
                    job = SyncJob.objects.create(
                        order=order, provider=provider, next_attempt_at=timezone.now(), enqueued_by=actor_label(actor)
                    )
                return job, True
            except IntegrityError:
                existing = selectors.live_job(order_id=order.pk, provider=provider)
                if existing is not None:
                    return existing, False
    raise BusinessRuleViolation(
        f"Order #{order_id} could not be queued for {provider}: its live job kept changing.",
        code=PosSyncErrorCode.LIVE_JOB_EXISTS,
    )


def requeue_sync_job(*, job_id: int, actor: Actor, reason: str = "") -> SyncJob:
    """dead -> pending, attempts reset, due now (audited, guarded). Refused while another live job
    exists for the same order and provider: the partial UNIQUE would be violated."""
    job = SyncJob.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"Sync job #{job_id} does not exist.")
    try:
        with atomic():
            apply_transition(
                instance=job,
                transition="requeue",
                actor=actor,
                expected=SyncJobStatus.DEAD,
                reason=reason or "requeued from the dead letters",
                changes={"attempts": 0, "next_attempt_at": timezone.now()},
            )
    except IntegrityError as exc:
        raise BusinessRuleViolation(
            f"Order #{job.order_id} already has a live {job.provider} job; job #{job.pk} stays dead.",
            code=PosSyncErrorCode.LIVE_JOB_EXISTS,
        ) from exc
    return job
