"""The drain: push due sync jobs to their provider, each order once, under an at-least-once cron.

Safety layers, in the order a job meets them:
1. `select_for_update(skip_locked=True)`: parallel ticks and workers take disjoint batches.
2. A claim `pos-sync:{order}:{provider}:{date}` with a lease, taken in that same transaction, and
   the job set aside (next_attempt_at = now + lease): no second worker pushes the job while the
   first holds it. A worker that dies after taking leaves both to run out; the job is then taken
   again the same day. The lease is one push's worst case (pos_sync.leases), counted by the
   database's clock (core.claims); the push renews it between search pages and checks it still
   holds it right before creating anything at the provider: a push whose lease ran out and whose
   job another worker took stops there (a beacon), and the new holder's outcome stands.
3. Provider idempotency: the push sends keys derived only from our order id, so a retry after a
   timeout (or after a dead worker) gets the first result back instead of a second order.
4. The state machine: success is a guarded pending/failed -> success, committed together with the
   claim's completion; a failure releases the claim and backs off; too many, or bad input, and
   the job becomes a dead letter (with a beacon) that only a human requeues.
No transaction is open while a provider is called.
"""

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.utils import timezone

from audit.beacons import emit_beacon
from audit.transitions import apply_transition
from core.actors import Actor, SystemActor
from core.claims import ClaimToken, claim, complete, release, renew
from core.errors import Conflict
from core.transactions import atomic
from pos_sync import selectors
from pos_sync.beacons import DEAD_LETTER
from pos_sync.errors import PosSyncErrorCode
from pos_sync.keys import sync_claim_key
from pos_sync.leases import claim_lease
from pos_sync.models import Order, SyncJob
from pos_sync.providers import get_provider
from pos_sync.providers.base import LeaseLost, OrderLine, OrderToPush, ProviderError, PushResult, to_minor_units
from pos_sync.services.connections import connection_credentials

logger = structlog.get_logger("pos_sync")

DRAIN_ACTOR = SystemActor("task:push_pending_orders")
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=1)
LOOK_UP_MARGIN = timedelta(minutes=5)  # clock skew between us and the provider
DRAIN_TIME_BUDGET_SECONDS = 45.0  # one beat tick's worth: the next tick continues
MAX_ERROR_LENGTH = 2000

SUCCEEDED, FAILED, DEAD, CONFLICT, LOST = "succeeded", "failed", "dead", "conflicts", "lost"
LEASE_LOST = "syncjob_lease_lost"  # a beacon: a push stopped because another worker took its job


@dataclass(frozen=True)
class Taken:
    job: SyncJob
    held: ClaimToken
    # When any job for this order first tried this provider (history included): read with the
    # batch so that a push needs no query of its own to decide whether to look up first.
    order_first_attempted_at: datetime


@dataclass
class DrainResult:
    selected: int = 0  # due jobs locked by this batch
    taken: int = 0  # ... of which this worker claimed (the rest are held by someone else)
    succeeded: int = 0
    failed: int = 0
    dead: int = 0
    conflicts: int = 0  # another worker finished the job first
    handed_back: int = 0  # taken but not pushed in time: released for the next batch
    lost: int = 0  # the lease ran out mid-push and another worker took the job: stopped before creating
    taken_ids: list[int] = field(default_factory=list)

    def add(self, other: "DrainResult") -> None:
        for name in ("selected", "taken", "succeeded", "failed", "dead", "conflicts", "handed_back", "lost"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.taken_ids.extend(other.taken_ids)

    def summary(self) -> dict[str, int]:
        data = asdict(self)
        data.pop("taken_ids")
        return data


def drain_due_jobs(
    *, actor: Actor = DRAIN_ACTOR, batch_size: int | None = None, time_budget: float = DRAIN_TIME_BUDGET_SECONDS
) -> DrainResult:
    """Batches until the queue has no due job left (or the time budget is spent)."""
    batch_size = batch_size or settings.POS_SYNC_BATCH_SIZE
    total = DrainResult()
    deadline = time.monotonic() + time_budget
    while True:
        result = push_due_jobs(actor=actor, batch_size=batch_size)
        total.add(result)
        if result.selected < batch_size or time.monotonic() >= deadline:
            return total


def push_due_jobs(*, actor: Actor = DRAIN_ACTOR, batch_size: int | None = None) -> DrainResult:
    """One batch: take up to `batch_size` due jobs, then push each one outside any transaction.

    A job's claim is renewed only once its own push starts (the push's heartbeat), so a slow
    provider could make the jobs still waiting in a batch outlast their lease and another worker
    take them (wasted work, and a lost-lease beacon): past half the lease, the jobs not yet pushed
    are handed back instead. Half, so that a push started before then reaches its first heartbeat
    (one call) within the lease. Measured on this process's monotonic clock: a jump of the wall
    clock neither hands a batch back early nor keeps it too long.
    """
    taken, selected = take_due_jobs(batch_size=batch_size or settings.POS_SYNC_BATCH_SIZE)
    result = DrainResult(selected=selected, taken=len(taken), taken_ids=[t.job.pk for t in taken])
    give_back_at = time.monotonic() + claim_lease().total_seconds() / 2
    for index, item in enumerate(taken):
        if time.monotonic() >= give_back_at:
            result.handed_back = hand_back(taken[index:])
            break
        outcome = push_job(taken=item, actor=actor)
        setattr(result, outcome, getattr(result, outcome) + 1)
    return result


def hand_back(items: list[Taken]) -> int:
    """Release taken jobs that were not pushed, and make them due again at once."""
    with atomic():
        for item in items:
            release(item.held)
        SyncJob.objects.filter(pk__in=[item.job.pk for item in items]).update(next_attempt_at=timezone.now())
    return len(items)


def take_due_jobs(*, batch_size: int) -> tuple[list[Taken], int]:
    """Lock a batch of due jobs (skip_locked), claim each, set the batch aside for one lease.

    Returns (the jobs this worker won, how many it locked). A worker that dies after this
    returns has pushed nothing yet: its claims and the jobs' next_attempt_at run out together.
    """
    now = timezone.now()
    lease = claim_lease()
    with atomic():
        jobs = list(
            selectors.with_order_first_attempt(selectors.due_jobs(now=now))
            .select_related("order__connection")
            .select_for_update(skip_locked=True, of=("self",))[:batch_size]
        )
        taken = []
        for job in jobs:
            held = claim(sync_claim_key(order_id=job.order_id, provider=job.provider, day=now.date()), lease=lease)
            if held.won:
                taken.append(Taken(job, held, job.order_first_attempted_at or now))
        # Set every locked job aside, won or not: a job whose claim someone else holds is not
        # due again before that claim's lease could have run out.
        SyncJob.objects.filter(pk__in=[job.pk for job in jobs]).update(next_attempt_at=now + lease)
        won_ids = [item.job.pk for item in taken]
        SyncJob.objects.filter(pk__in=won_ids, first_attempted_at__isnull=True).update(first_attempted_at=now)
    for item in taken:
        item.job.next_attempt_at = now + lease
        item.job.first_attempted_at = item.job.first_attempted_at or now
    return taken, len(jobs)


def push_job(*, taken: Taken, actor: Actor) -> str:
    """Push one taken job and record the outcome; returns succeeded | failed | dead | conflicts | lost."""
    job, held = taken.job, taken.held
    lease = claim_lease()
    try:
        result = _push(job, look_up_after=taken.order_first_attempted_at, still_ours=lambda: renew(held, lease))
    except LeaseLost as lost:
        return _record_lease_lost(job=job, reason=str(lost))
    except ProviderError as error:
        return _record_failure(job=job, held=held, error=error, actor=actor)
    except Exception as exc:
        # A bug in one job must not strand the rest of the batch with held claims: fail this job
        # (retryable: the keys make a repeat harmless) and keep the traceback in the log.
        logger.exception("pos_sync.push_crashed", job_id=job.pk, order_id=job.order_id)
        crash = ProviderError(PosSyncErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}", retryable=True)
        return _record_failure(job=job, held=held, error=crash, actor=actor)
    return _record_success(job=job, held=held, result=result, actor=actor)


def backoff_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with "equal jitter": between half and all of min(cap, base * 2^(n-1)),
    so a burst of jobs failing together (a Square outage) does not come back together."""
    nominal = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** max(attempts - 1, 0)))
    return nominal / 2 + nominal / 2 * (rng or random).random()


def _push(job: SyncJob, *, look_up_after: datetime, still_ours: Callable[[], bool]) -> PushResult:
    provider = get_provider(job.provider)
    credentials = connection_credentials(job.order.connection)
    look_up_since = _look_up_since(look_up_after, provider.idempotency_window)
    return provider.push(
        order=_order_to_push(job.order), credentials=credentials, look_up_since=look_up_since, still_ours=still_ours
    )


def _look_up_since(first_attempted_at: datetime, window: timedelta) -> datetime | None:
    """Past the provider's idempotency window since the first attempt (of any job for this order),
    a resent key may no longer be recognised: read before creating."""
    if timezone.now() - first_attempted_at <= window:
        return None
    return first_attempted_at - LOOK_UP_MARGIN


def _order_to_push(order: Order) -> OrderToPush:
    lines = tuple(
        OrderLine(
            name=line["name"],
            quantity=int(line["quantity"]),
            unit_amount=to_minor_units(line["unit_price"], order.currency),
        )
        for line in order.line_items
    )
    return OrderToPush(
        order_id=order.pk,
        table_id=order.table_id,
        currency=order.currency,
        total_amount=to_minor_units(order.total, order.currency),
        lines=lines,
    )


def _record_success(*, job: SyncJob, held: ClaimToken, result: PushResult, actor: Actor) -> str:
    changes = {
        "provider_order_id": result.provider_order_id,
        "provider_payment_id": result.provider_payment_id,
        "attempts": job.attempts + 1,
        "last_error_code": "",
        "last_error": "",
    }
    how = "found at the provider" if result.found_existing else "pushed"
    try:
        with atomic():  # the success and the claim's completion commit together, or neither does
            apply_transition(
                instance=job, transition="succeed", actor=actor, expected=job.status, reason=how, changes=changes
            )
            complete(held)
    except Conflict:
        # Another worker finished this job first (it took over after our lease ran out). The push
        # was idempotent, so nothing was doubled: its outcome stands.
        return CONFLICT
    logger.info("pos_sync.pushed", job_id=job.pk, order_id=job.order_id, provider=job.provider, how=how)
    return SUCCEEDED


def _record_lease_lost(*, job: SyncJob, reason: str) -> str:
    """Our lease ran out mid-push and another worker took the job: it now holds the claim and will
    record the outcome. We touch neither (nothing of ours to release, no transition to make)."""
    logger.warning("pos_sync.lease_lost", job_id=job.pk, order_id=job.order_id, provider=job.provider, reason=reason)
    emit_beacon(LEASE_LOST, job_id=job.pk, order_id=job.order_id, provider=job.provider)
    return LOST


def _record_failure(*, job: SyncJob, held: ClaimToken, error: ProviderError, actor: Actor) -> str:
    attempts = job.attempts + 1
    dead = not error.retryable or attempts >= settings.POS_SYNC_MAX_ATTEMPTS
    changes: dict[str, object] = {
        "attempts": attempts,
        "last_error_code": error.code,
        "last_error": error.message[:MAX_ERROR_LENGTH],
    }
    if not dead:
        changes["next_attempt_at"] = timezone.now() + backoff_delay(attempts)
    try:
        with atomic():
            # Released: the next attempt resends the same keys, so even an ambiguous outcome
            # (a timeout after Square created the order) is safe to retry.
            release(held)
            apply_transition(
                instance=job,
                transition="dead_letter" if dead else "fail",
                actor=actor,
                expected=job.status,
                reason=str(error)[:500],
                changes=changes,
            )
    except Conflict:
        return CONFLICT
    logger.warning("pos_sync.push_failed", job_id=job.pk, code=error.code, attempts=attempts, dead=dead)
    if dead:
        emit_beacon(
            DEAD_LETTER,
            job_id=job.pk,
            order_id=job.order_id,
            provider=job.provider,
            code=error.code,
            attempts=attempts,
        )
        return DEAD
    return FAILED
