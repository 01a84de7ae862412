"""Scenario 2: a Celery worker SIGKILLed mid-dispatch (payouts -> Wise) and mid-push (pos_sync -> Square).

Each kill lands while the provider holds the call AFTER doing the work ("timeout_after_commit"):
the transfer, funding, order or payment exists at the provider and the worker dies before it hears
so, which is the case that could pay twice. Two ways to die:
- the pool child running the task is killed: Celery's main process sees the worker lost and, with
  acks_late + task_reject_on_worker_lost, requeues the message at once (redelivered, asserted);
- the whole worker is killed (main process too, as when its host dies): the message stays
  unacknowledged on Redis until the broker's visibility_timeout (3600 s in config/settings.py),
  which this suite simulates by running kombu's own restore; a replacement worker is started.
Either way the redelivered task finds the dead worker's claim still leased (the busy answer), and
recovery comes from the lease running out and the beat sweepers (redispatch_stuck_payouts, the POS
drain) resending the same idempotency keys. The default run moves the lease clock forward once the
broker is idle; --chaos-long waits the real leases out (2 min for payouts, 2 min for POS).
Invariants, from the database AND the stand-ins' records: one transfer and one funding per payout,
one order and one payment per POS order.
"""

import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

import pytest

from payouts.keys import wise_transaction_id
from payouts.models import Payout
from pos_sync.keys import square_order_key, square_payment_key, square_reference_id
from pos_sync.models import SyncJob, SyncJobStatus
from tests.chaos.conftest import SUMMARY
from tests.chaos.helpers import (
    PAYOUT_LEASES,
    POS_LEASES,
    PUSH_ORDERS,
    SWEEP_PAYOUTS,
    Clock,
    Drive,
    ledger_ok,
    reviewer_tokens,
)
from tests.chaos.processes import wait_for
from tests.chaos.stack import ChaosStack, StandIn
from tests.factories.payouts import PayoutFactory, funded_affiliate
from tests.factories.pos_sync import SyncJobFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
DISPATCH = "payouts.tasks.dispatch_wise_transfer"
# The stand-in holds the answer this long: longer than finding and killing the worker may take
# (WAIT, twice), so the kill always lands first however busy the machine. An abandoned hold costs nothing.
WAIT = 120.0  # for one step to be seen (a call held, a worker busy in it, a redelivery); generous
HELD_FOR = 2 * WAIT + 60.0


@dataclass
class Kill:
    domain: str  # "payout" | "pos"
    name: str  # the call
    call: tuple[str, str]  # the provider call the worker dies in (method, path regex)
    whole_worker: bool
    redelivered_by: str = ""
    object_id: int = 0


CASES = [
    Kill("payout", "create-transfer", ("POST", r"^/v1/transfers$"), whole_worker=False),
    Kill("payout", "funding", ("POST", r"^/v3/profiles/[^/]+/transfers/\d+/payments$"), whole_worker=True),
    Kill("pos", "CreateOrder", ("POST", r"^/v2/orders$"), whole_worker=False),
    Kill("pos", "CreatePayment", ("POST", r"^/v2/payments$"), whole_worker=True),
]


def _kill_mid_call(stack: ChaosStack, standin: StandIn, case: Kill, task_name: str, marks: dict[str, int]) -> None:
    """Wait for the held call, SIGKILL the worker making it, and see its message delivered again."""
    method, path = case.call
    wait_for(lambda: [r for r in standin.requests(method, path) if r["fault"]], timeout=WAIT, what=f"{method} {path}")
    worker, task_id, pid = stack.busy_worker(task_name, marks, port=standin.port, timeout=WAIT)
    if not case.whole_worker:
        stack.kill_pool_child(pid)
        wait_for(lambda: stack.deliveries(task_id) >= 2, timeout=WAIT, what=f"{task_id} redelivered")
        case.redelivered_by = "Celery at once"
        return
    stack.kill_worker(worker)
    stack.start_worker()
    # A restarted worker does not take the dead one's message: it stays unacknowledged on Redis.
    time.sleep(2)
    assert stack.deliveries(task_id) == 1 and stack.unacked() == 1, (stack.deliveries(task_id), stack.unacked())
    stack.expire_visibility_timeout(orphans=1)
    wait_for(lambda: stack.deliveries(task_id) >= 2, timeout=WAIT, what=f"{task_id} redelivered")
    case.redelivered_by = "Redis after the visibility_timeout"


def _payout_case(stack: ChaosStack, case: Kill, token: str, drive: Drive, timeout: float) -> None:
    wise = stack.standins["wise"]
    payout = PayoutFactory(affiliate=funded_affiliate(Decimal("500.00")), amount=Decimal("42.00"))
    case.object_id = payout.pk
    wise.fault(*case.call, "timeout_after_commit", delay=HELD_FOR)
    marks = stack.log_marks()
    with stack.api(token) as client:
        assert client.post(f"/api/payouts/{payout.pk}/approve/", json={}).status_code == 200
    _kill_mid_call(stack, wise, case, DISPATCH, marks)
    drive.until(
        lambda: Payout.objects.filter(pk=payout.pk, wise_funded_at__isnull=False).exists(),
        timeout=timeout,
        what=f"payout {payout.pk} funded after the kill",
    )


def _pos_case(stack: ChaosStack, case: Kill, drive: Drive, timeout: float) -> None:
    square = stack.standins["square"]
    job = SyncJobFactory()
    case.object_id = job.order_id
    square.fault(*case.call, "timeout_after_commit", delay=HELD_FOR)
    marks = stack.log_marks()
    stack.send_task(PUSH_ORDERS)  # one beat tick
    _kill_mid_call(stack, square, case, PUSH_ORDERS, marks)
    drive.until(
        lambda: SyncJob.objects.filter(pk=job.pk, status=SyncJobStatus.SUCCESS).exists(),
        timeout=timeout,
        what=f"sync job {job.pk} pushed after the kill",
    )


def test_worker_killed_mid_dispatch_and_mid_push(stack: ChaosStack, chaos_long: bool) -> None:
    tokens = reviewer_tokens("kerem")
    clock = Clock(enabled=not chaos_long)
    payouts_drive = Drive(stack, clock, ticks=[SWEEP_PAYOUTS], clock_moves=[PAYOUT_LEASES])
    pos_drive = Drive(stack, clock, ticks=[PUSH_ORDERS], clock_moves=[POS_LEASES])
    timeout = 400.0 if chaos_long else 300.0  # generous: a settled case returns at once
    started = time.monotonic()

    for case in CASES:
        wait_for(stack.broker_idle, timeout=WAIT, what="the previous case's ticks to finish")
        if case.domain == "payout":
            _payout_case(stack, case, tokens["kerem"], payouts_drive, timeout)
        else:
            _pos_case(stack, case, pos_drive, timeout)

    # Wise's record: one transfer per payout (its customerTransactionId), funded once
    wise_state = stack.standins["wise"].state()
    payout_ids = [c.object_id for c in CASES if c.domain == "payout"]
    transfers = Counter(t["customerTransactionId"] for t in wise_state["transfers"])
    assert transfers == {wise_transaction_id(payout_id=pid, attempt=1): 1 for pid in payout_ids}, transfers
    fundings = Counter(f["transferId"] for f in wise_state["fundings"])
    assert sorted(fundings.values()) == [1] * len(payout_ids), fundings
    recorded = set(Payout.objects.filter(pk__in=payout_ids).values_list("wise_transfer_id", flat=True))
    assert recorded == {str(t["id"]) for t in wise_state["transfers"]}

    # Square's record: one order per our order (reference_id), one payment on it
    square_state = stack.standins["square"].state()
    order_ids = [c.object_id for c in CASES if c.domain == "pos"]
    orders = Counter(o["reference_id"] for o in square_state["orders"])
    assert orders == {square_reference_id(oid): 1 for oid in order_ids}, orders
    payments = Counter(p["order_id"] for p in square_state["payments"])
    assert sorted(payments.values()) == [1] * len(order_ids) and set(payments) == {
        o["id"] for o in square_state["orders"]
    }, payments
    jobs = SyncJob.objects.filter(order_id__in=order_ids)
    assert {j.provider_order_id for j in jobs} == {o["id"] for o in square_state["orders"]}

    # The recoveries really went back to the provider: the killed call resent with the same key
    # (Wise returned its transfer, Square replayed), and the killed funding read, never refunded.
    wise, square = stack.standins["wise"], stack.standins["square"]
    transfer_case, funding_case, order_case, payment_case = CASES
    key = wise_transaction_id(payout_id=transfer_case.object_id, attempt=1)
    assert len([r for r in wise.requests("POST", r"^/v1/transfers$") if r["body"]["customerTransactionId"] == key]) == 2
    funded_id = Payout.objects.get(pk=funding_case.object_id).wise_transfer_id
    assert len(wise.requests("POST", rf"/transfers/{funded_id}/payments$")) == 1
    assert len(wise.requests("GET", rf"^/v1/transfers/{funded_id}$")) >= 2  # read before funding, and after the kill
    order_key, payment_key = square_order_key(order_case.object_id), square_payment_key(payment_case.object_id)
    keys_sent = Counter(r["body"]["idempotency_key"] for r in square.requests("POST", r"^/v2/(orders|payments)$"))
    assert keys_sent[order_key] == 2 and keys_sent[payment_key] == 2, keys_sent

    kills = "; ".join(
        f"{c.domain} {c.name} ({'whole worker' if c.whole_worker else 'pool child'}: redelivered by {c.redelivered_by})"
        for c in CASES
    )
    books = ledger_ok()
    SUMMARY.add(
        f"worker-kill: {len(CASES)} SIGKILLs mid-call after the provider committed [{kills}]; "
        f"{sum(transfers.values())} Wise transfers / {sum(fundings.values())} fundings for {len(payout_ids)} payouts, "
        f"{sum(orders.values())} Square orders / {sum(payments.values())} payments for {len(order_ids)} POS orders: "
        f"0 second transfers, orders or payments (killed creates resent with the same key, the killed funding "
        f"read back and never sent again); {payouts_drive.ticks_sent + pos_drive.ticks_sent} beat ticks sent, "
        f"lease clock moved {clock.moves}x "
        f"({'real waits' if chaos_long else 'simulated'}); {time.monotonic() - started:.1f} s; {books}",
        key=2,
    )
