"""What the scenarios share: reviewers with API tokens, the drive loop (beat ticks until the system
settles), and the simulated clock for leases and backoffs."""

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import close_old_connections
from django.db.models import Sum
from django.utils import timezone
from rest_framework.authtoken.models import Token

from audit.models import AuditEntry, BeaconCount
from core.models import Claim
from ledger.checks import check_ledger
from loyalty.models import DiscountStatus, LoyaltyDiscount
from loyalty.services.grants import RESUME_AFTER
from pos_sync.models import LIVE_STATUSES, SyncJob
from tests.chaos.stack import ChaosStack
from tests.factories.accounts import SuperAdminFactory

SWEEP_PAYOUTS = "payouts.tasks.redispatch_stuck_payouts"
PUSH_ORDERS = "pos_sync.tasks.push_pending_orders"
APPLY_LOYALTY = "loyalty.tasks.apply_loyalty"


def reviewer_tokens(*names: str) -> dict[str, str]:
    """Super-admins with DRF tokens: {username: token}."""
    return {name: Token.objects.create(user=SuperAdminFactory(username=name)).key for name in names}


def ledger_ok() -> str:
    """The books after a scenario: `check_ledger` on the database the stack wrote (the test
    database), asserted clean; returns the summary's "ledger OK (...)" fragment."""
    close_old_connections()
    report = check_ledger()
    assert report.ok, report.summary()
    return f"ledger OK ({report.transfers} transfers, {report.accounts} accounts)"


def beacons(kind: str) -> int:
    return BeaconCount.objects.filter(kind=kind).aggregate(n=Sum("count", default=0))["n"]


def audit_targets(model_label: str) -> dict[str, int]:
    """{target state: audit rows} for one model, e.g. "payouts.payout"."""
    app_label, model = model_label.split(".")
    rows = AuditEntry.objects.filter(content_type__app_label=app_label, content_type__model=model)
    counts: dict[str, int] = {}
    for target in rows.values_list("target", flat=True):
        counts[target] = counts.get(target, 0) + 1
    return counts


# What the clock can move, each as if its time had come:
PAYOUT_LEASES = "payout dispatch leases"  # a dead dispatcher's claim (dispatch_lease(): 2 min at 5 s)
POS_LEASES = "pos leases and backoffs"  # a dead drain's claims and set-aside jobs; failed jobs' backoff
LOYALTY_RESUME = "loyalty resume"  # a pending discount whose attempt failed (RESUME_AFTER, 10 min)


@dataclass
class Clock:
    """Moves the time-based columns that gate recovery as if their time had come: a dead holder's
    claim lease runs out, a failed job's backoff ends, a failed grant becomes stale. Only while the
    broker is idle (no task running, reserved or waiting for its retry ETA), so no live holder is
    ever overtaken. With --chaos-long the clock is never moved: the drive loop waits the real
    leases out."""

    enabled: bool
    moves: int = 0
    moved: Counter = field(default_factory=Counter)

    def advance(self, what: Sequence[str]) -> None:
        if not self.enabled:
            return
        now = timezone.now()
        past = now - timedelta(seconds=1)
        open_claims = Claim.objects.filter(completed_at__isnull=True, lease_expires_at__gt=now)
        moved = Counter()
        if PAYOUT_LEASES in what:
            moved["claims"] += open_claims.filter(key__startswith="payouts:wise-dispatch:").update(
                lease_expires_at=past
            )
        if POS_LEASES in what:
            moved["claims"] += open_claims.filter(key__startswith="pos-sync:").update(lease_expires_at=past)
            jobs = SyncJob.objects.filter(status__in=LIVE_STATUSES, next_attempt_at__gt=now)
            moved["jobs"] += jobs.update(next_attempt_at=now)
        if LOYALTY_RESUME in what:
            stale = now - RESUME_AFTER - timedelta(seconds=1)
            failed = LoyaltyDiscount.objects.filter(status=DiscountStatus.PENDING, last_attempt_at__gt=stale)
            moved["discounts"] += failed.update(created_at=stale, last_attempt_at=stale)
        if sum(moved.values()):
            self.moves += 1
            self.moved.update(moved)


@dataclass
class Drive:
    """Beat ticks until `done()`; the clock moves only when the system is otherwise idle."""

    stack: ChaosStack
    clock: Clock
    ticks: Sequence[str]
    clock_moves: Sequence[str] = ()
    tick_every: float = 1.0
    ticks_sent: int = 0

    def until(self, done: Callable[[], bool], *, timeout: float, what: str) -> float:
        started = time.monotonic()
        deadline = started + timeout
        while True:
            close_old_connections()
            if done():
                return time.monotonic() - started
            if time.monotonic() >= deadline:
                raise TimeoutError(f"not settled after {timeout:.0f} s: {what}\n{self.stack.tails()}")
            if self.stack.queued() == 0:
                for task in self.ticks:
                    self.stack.send_task(task)
                    self.ticks_sent += 1
            time.sleep(self.tick_every)
            if self.clock_moves and self._idle():
                self.clock.advance(self.clock_moves)

    def _idle(self) -> bool:
        if not self.stack.broker_idle():
            return False
        time.sleep(0.2)
        return self.stack.broker_idle()


def wait_until(done: Callable[[], bool], *, timeout: float, what: str, stack: ChaosStack | None = None) -> float:
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > timeout:
            tails = stack.tails() if stack else ""
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")
        time.sleep(0.2)
        close_old_connections()
    return time.monotonic() - started
