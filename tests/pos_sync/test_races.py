"""The queue under real contention: PostgreSQL, one connection per thread, a barrier, and the
Square stand-in counting what it really received."""

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db.models import Sum
from django.utils import timezone

from audit.models import AuditEntry, BeaconCount
from core.actors import SystemActor
from core.models import Claim
from pos_sync.keys import square_reference_id, sync_claim_key
from pos_sync.models import Order, OrderStatus, PosConnection, SyncJob, SyncJobStatus
from pos_sync.selectors import job_counts_by_status
from pos_sync.services import drain_due_jobs, enqueue_sync_job
from pos_sync.services.drain import BACKOFF_CAP
from tests.concurrency import race
from tests.factories.pos_sync import SANDBOX_TOKEN, OrderFactory
from tests.pos_sync.standin import LATE, SHORT_TIMEOUT

pytestmark = pytest.mark.django_db(transaction=True)
LINES = [{"name": "Set menu", "quantity": 2, "unit_price": "19.90"}]
DRAIN_ROUNDS = 2  # x 1000 jobs x 4 drains; kept to two rounds for the 20-minute CI budget


def seed_due_jobs(count: int, *, restaurants: int = 10, prefix: str = "") -> list[SyncJob]:
    connections = PosConnection.objects.bulk_create(
        PosConnection(restaurant_name=f"Race {prefix}{i}", location_id=f"L{prefix}{i}", access_token=SANDBOX_TOKEN)
        for i in range(restaurants)
    )
    orders = Order.objects.bulk_create(
        Order(
            connection=connections[i % restaurants],
            table_id=f"T{i}",
            line_items=LINES,
            total=Decimal("39.80"),
            status=OrderStatus.CLOSED,
        )
        for i in range(count)
    )
    return SyncJob.objects.bulk_create(SyncJob(order=order, provider="square") for order in orders)


def assert_each_order_once_at_square(square, orders: list[int]) -> None:
    """Every order exactly once at the stand-in: one CreateOrder object and one payment per
    reference_id, nothing for anything else."""
    by_reference = Counter(o.get("reference_id") for o in square.app.orders.values())
    assert by_reference == Counter(square_reference_id(pk) for pk in orders)
    paid = Counter(p.get("reference_id") for p in square.app.payments.values())
    assert paid == Counter(square_reference_id(pk) for pk in orders)
    for order in square.app.orders.values():
        assert [t["payment_id"] for t in order["tenders"]] == [
            p["id"] for p in square.app.payments.values() if p["order_id"] == order["id"]
        ]


@pytest.mark.slow
def test_four_concurrent_drains_push_each_of_1000_due_jobs_exactly_once(square):
    timings = []
    for round_no in range(DRAIN_ROUNDS):
        square.app.reset()
        jobs = seed_due_jobs(1000, prefix=f"r{round_no}")
        job_ids = {j.pk for j in jobs}
        drains = [lambda: drain_due_jobs(batch_size=50, time_budget=600) for _ in range(4)]

        started = time.monotonic()
        outcomes = race(drains, timeout=600)
        timings.append(time.monotonic() - started)

        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
        taken = [pk for o in outcomes for pk in o.result.taken_ids]
        assert len(taken) == len(set(taken)) == 1000  # no job taken twice, none left behind
        assert set(taken) == job_ids
        assert sum(1 for o in outcomes if o.result.taken) >= 2, "the drains did not overlap"
        assert sum(o.result.succeeded for o in outcomes) == 1000
        assert SyncJob.objects.filter(pk__in=job_ids, status=SyncJobStatus.SUCCESS).count() == 1000
        assert_each_order_once_at_square(square, [j.order_id for j in jobs])
        assert len(square.app.requests_to("POST", r"^/v2/orders$")) == 1000  # not even a replayed request
        assert len(square.app.requests_to("POST", r"^/v2/payments$")) == 1000
        entries = AuditEntry.objects.filter(content_type__model="syncjob", object_id__in=[str(pk) for pk in job_ids])
        assert sorted(entries.values_list("source", "target").distinct()) == [("pending", "success")]
        assert entries.count() == 1000
        keys = [sync_claim_key(order_id=j.order_id, provider="square", day=timezone.now().date()) for j in jobs]
        assert Claim.objects.filter(key__in=keys, completed_at__isnull=False).count() == 1000
        per_drain = [o.result.taken for o in outcomes]
        print(f"\nround {round_no}: 4 drains x 1000 jobs in {timings[-1]:.1f}s, taken per drain {per_drain}")
    assert not BeaconCount.objects.exists()  # no lost race, no dead letter, in any round


@pytest.mark.slow
def test_concurrent_drains_through_timeouts_and_dropped_answers_still_push_each_order_once(square, settings):
    settings.SQUARE_TIMEOUT_SECONDS = SHORT_TIMEOUT
    faults = [
        ("^/v2/orders$", "timeout_after_commit", 12),
        ("^/v2/payments$", "timeout_after_commit", 12),
        ("^/v2/orders$", "drop_after_commit", 10),
        ("^/v2/payments$", "error_500_after_commit", 10),
        ("^/v2/payments$", "error_500", 10),
        ("^/v2/orders$", "drop_connection", 10),
    ]
    for path, mode, times in faults:
        square.app.add_fault(method="POST", path=path, mode=mode, times=times, delay=LATE)

    ticks = 0
    with time_machine.travel(datetime(2026, 11, 25, 9, 0, tzinfo=UTC), tick=True) as clock:
        # Seeded on the travelled clock, so due at its first tick whatever today's real date is
        # (seeded before the travel, they were due only once the clock passed the real date).
        jobs = seed_due_jobs(200, restaurants=4)
        # Bounded by the work, not by the machine's speed: after the shift every unfinished job is
        # due, so a tick that spends no attempt means the queue is stuck (fail at once); and no job
        # has more than POS_SYNC_MAX_ATTEMPTS attempts to spend.
        most_ticks = len(jobs) * settings.POS_SYNC_MAX_ATTEMPTS
        spent = 0
        while SyncJob.objects.exclude(status=SyncJobStatus.SUCCESS).exists():
            ticks += 1
            assert ticks <= most_ticks, f"jobs did not converge: {ticks} ticks > {most_ticks}"
            outcomes = race([lambda: drain_due_jobs(batch_size=20, time_budget=600) for _ in range(4)], timeout=600)
            assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
            before, spent = spent, SyncJob.objects.aggregate(n=Sum("attempts"))["n"]
            assert spent > before, f"tick {ticks} pushed nothing: {job_counts_by_status()}"
            clock.shift(BACKOFF_CAP + timedelta(minutes=11))  # past any backoff and any lease
    print(f"\n200 jobs through {sum(f[2] for f in faults)} faults in {ticks} ticks ({spent} attempts)")

    assert ticks >= 2  # the faults did bite
    assert sum(f.times for f in square.app.faults) == 0
    assert SyncJob.objects.filter(status=SyncJobStatus.SUCCESS).count() == 200
    assert SyncJob.objects.filter(attempts__gt=1).count() >= 40
    assert_each_order_once_at_square(square, [j.order_id for j in jobs])
    failed_then_succeeded = AuditEntry.objects.filter(content_type__model="syncjob", target="success", source="failed")
    assert failed_then_succeeded.count() == SyncJob.objects.filter(attempts__gt=1).count()


@pytest.mark.slow
def test_concurrent_enqueue_x8_leaves_one_live_job_and_after_success_a_new_one_is_accepted(square):
    rounds = 25
    orders = [OrderFactory() for _ in range(rounds)]
    for order in orders:
        outcomes = race([lambda: enqueue_sync_job(order_id=order.pk, actor=_actor(i)) for i in range(8)])
        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]  # IntegrityError caught, not raised
        assert sum(o.result[1] for o in outcomes) == 1
        assert len({o.result[0].pk for o in outcomes}) == 1
        assert SyncJob.objects.filter(order=order).count() == 1

    result = drain_due_jobs()
    assert result.succeeded == rounds

    for order in orders:
        outcomes = race([lambda: enqueue_sync_job(order_id=order.pk, actor=_actor(i)) for i in range(8)])
        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
        assert sum(o.result[1] for o in outcomes) == 1
        statuses = sorted(SyncJob.objects.filter(order=order).values_list("status", flat=True))
        assert statuses == ["pending", "success"]


def _actor(i: int) -> SystemActor:
    return SystemActor(f"enqueuer-{i}")
