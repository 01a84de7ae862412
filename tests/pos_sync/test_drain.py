"""The drain against the Square stand-in: one push per order whatever the network does.

Time is pinned with time_machine (10:00 UTC) so that backoff and leases can be crossed on purpose
and always within the same day (the claim key carries the date).
"""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from audit.models import AuditEntry, BeaconCount
from core.models import Claim
from pos_sync.keys import square_order_key, square_payment_key, square_reference_id, sync_claim_key
from pos_sync.models import SyncJob, SyncJobStatus
from pos_sync.services import drain_due_jobs, push_due_jobs, take_due_jobs
from pos_sync.services.drain import BACKOFF_CAP, backoff_delay
from tests.factories.pos_sync import SANDBOX_TOKEN, OrderFactory, SyncJobFactory
from tests.pos_sync.standin import LATE, SHORT_TIMEOUT

pytestmark = pytest.mark.django_db
MORNING = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
ORDERS, PAYMENTS, SEARCH = r"^/v2/orders$", r"^/v2/payments$", r"^/v2/orders/search$"
SQUARE_400 = {
    "errors": [
        {
            "category": "INVALID_REQUEST_ERROR",
            "code": "INVALID_VALUE",
            "detail": "Bad line item",
            "field": "order.line_items[0]",
        }
    ]
}


@pytest.fixture
def clock():
    with time_machine.travel(MORNING, tick=False) as traveller:
        yield traveller


def at_square(square, job: SyncJob) -> tuple[list[dict], list[dict]]:
    """(orders, payments) the stand-in holds for this job's order."""
    orders = square.app.orders_with_reference(square_reference_id(job.order_id))
    payments = [p for o in orders for p in square.app.payments_for_order(o["id"])]
    return orders, payments


def transitions(job: SyncJob) -> list[tuple[str, str]]:
    entries = AuditEntry.objects.filter(content_type__model="syncjob", object_id=str(job.pk)).order_by("id")
    return [(e.source, e.target) for e in entries]


def dead_letter_beacons() -> int:
    return sum(BeaconCount.objects.filter(kind="syncjob_dead_letter").values_list("count", flat=True))


def test_a_due_job_is_pushed_once_with_keys_derived_from_the_order(square, clock):
    job = SyncJobFactory()

    result = push_due_jobs()

    job.refresh_from_db()
    orders, payments = at_square(square, job)
    assert (result.selected, result.taken, result.succeeded) == (1, 1, 1)
    assert job.status == SyncJobStatus.SUCCESS
    assert len(orders) == 1 and len(payments) == 1
    assert (job.provider_order_id, job.provider_payment_id) == (orders[0]["id"], payments[0]["id"])
    assert payments[0]["amount_money"] == {"amount": 2800, "currency": "USD"}
    assert payments[0]["source_type"] == "EXTERNAL"
    assert orders[0]["location_id"] == job.order.connection.location_id
    [order_call] = square.app.requests_to("POST", ORDERS)
    [payment_call] = square.app.requests_to("POST", PAYMENTS)
    assert (
        order_call.body["idempotency_key"] == square_order_key(job.order_id) == f"posSync:{job.order_id}:square:order"
    )
    assert payment_call.body["idempotency_key"] == square_payment_key(job.order_id)
    assert order_call.body["order"]["reference_id"] == square_reference_id(job.order_id) == f"bo-{job.order_id}"
    assert order_call.body["order"]["metadata"] == {
        "bo_order_id": str(job.order_id),
        "bo_connection_id": str(job.order.connection_id),
    }
    assert payment_call.body["reference_id"] == f"bo-{job.order_id}"
    assert order_call.headers["Authorization"] == f"Bearer {SANDBOX_TOKEN}"
    claim = Claim.objects.get(key=sync_claim_key(order_id=job.order_id, provider="square", day=MORNING.date()))
    assert claim.key == f"pos-sync:{job.order_id}:square:2026-11-25"
    assert claim.completed_at is not None
    assert transitions(job) == [("pending", "success")]
    assert push_due_jobs().selected == 0  # nothing left to do


def test_timeout_after_create_then_retry_leaves_one_order_and_one_payment(square, settings, clock):
    # given: Square creates the order, then answers only after the client gave up
    settings.SQUARE_TIMEOUT_SECONDS = SHORT_TIMEOUT
    square.app.add_fault(method="POST", path=ORDERS, mode="timeout_after_commit", delay=LATE)
    job = SyncJobFactory()

    # when: the first tick times out
    first = push_due_jobs()

    # then: the job failed (ambiguous outcome), Square holds the order, nothing further was sent
    job.refresh_from_db()
    assert (first.failed, job.status, job.attempts, job.last_error_code) == (1, "failed", 1, "timeout")
    assert "CreateOrder" in job.last_error
    assert len(at_square(square, job)[0]) == 1
    assert square.app.requests_to("POST", PAYMENTS) == []
    assert push_due_jobs().selected == 0  # backing off: not due yet

    # when: the backoff has passed, the next tick retries with the same keys
    clock.shift(timedelta(minutes=1, seconds=1))
    second = push_due_jobs()

    # then: Square replayed the order; one order, one payment, job success
    job.refresh_from_db()
    orders, payments = at_square(square, job)
    assert second.succeeded == 1
    assert job.status == SyncJobStatus.SUCCESS
    assert len(orders) == 1 and len(payments) == 1
    assert job.provider_order_id == orders[0]["id"]
    assert job.attempts == 2
    keys = {r.body["idempotency_key"] for r in square.app.requests_to("POST", ORDERS)}
    assert len(square.app.requests_to("POST", ORDERS)) == 2 and keys == {square_order_key(job.order_id)}
    assert square.app.requests_to("POST", SEARCH) == []  # within the window: no read needed
    assert transitions(job) == [("pending", "failed"), ("failed", "success")]


@pytest.mark.parametrize("mode", ["timeout_after_commit", "error_500_after_commit", "drop_after_commit"])
@pytest.mark.parametrize("path", [ORDERS, PAYMENTS])
def test_any_ambiguous_failure_then_retry_leaves_one_order_and_one_payment(square, settings, clock, mode, path):
    settings.SQUARE_TIMEOUT_SECONDS = SHORT_TIMEOUT
    square.app.add_fault(method="POST", path=path, mode=mode, delay=LATE)
    job = SyncJobFactory()

    push_due_jobs()
    job.refresh_from_db()
    assert job.status == SyncJobStatus.FAILED
    assert len(square.app.requests_to("POST", path)) == 1  # the SDK's own retries are off: one request
    clock.shift(timedelta(minutes=2))
    push_due_jobs()

    job.refresh_from_db()
    orders, payments = at_square(square, job)
    assert job.status == SyncJobStatus.SUCCESS
    assert (len(orders), len(payments)) == (1, 1)
    assert (job.provider_order_id, job.provider_payment_id) == (orders[0]["id"], payments[0]["id"])


def test_a_500_is_retried_by_us_not_by_the_sdk(square, clock):
    square.app.add_fault(method="POST", path=ORDERS, mode="error_500", times=1)
    job = SyncJobFactory()

    push_due_jobs()
    job.refresh_from_db()
    assert (job.status, job.last_error_code) == ("failed", "provider_unavailable")
    assert "500" in job.last_error
    assert len(square.app.requests_to("POST", ORDERS)) == 1
    assert square.app.orders == {}

    clock.shift(timedelta(minutes=1, seconds=1))
    push_due_jobs()
    job.refresh_from_db()
    assert job.status == SyncJobStatus.SUCCESS
    assert len(square.app.orders) == 1


def test_past_the_idempotency_window_the_retry_reads_square_before_creating(square, settings, clock):
    settings.SQUARE_TIMEOUT_SECONDS = SHORT_TIMEOUT
    square.app.add_fault(method="POST", path=ORDERS, mode="timeout_after_commit", delay=LATE)
    job = SyncJobFactory()
    push_due_jobs()  # the order exists at Square, we do not know it

    # when: more than 24 hours later Square may have forgotten the key (here it has)
    clock.shift(timedelta(hours=25))
    square.app.expire_idempotency()
    push_due_jobs()

    # then: the order was found by our mark and only the payment was created
    job.refresh_from_db()
    orders, payments = at_square(square, job)
    assert job.status == SyncJobStatus.SUCCESS
    assert (len(orders), len(payments)) == (1, 1)
    assert job.provider_order_id == orders[0]["id"]
    assert len(square.app.requests_to("POST", ORDERS)) == 1  # never created again
    [search] = square.app.requests_to("POST", SEARCH)
    assert search.body["query"]["filter"]["date_time_filter"]["created_at"]["start_at"] < orders[0]["created_at"]


def test_a_new_job_for_an_order_pushed_days_ago_finds_it_instead_of_pushing_again(square, clock):
    job = SyncJobFactory()
    push_due_jobs()
    job.refresh_from_db()
    clock.shift(timedelta(days=2))
    square.app.expire_idempotency()
    again = SyncJobFactory(order=job.order)  # accepted: the first job is history

    push_due_jobs()

    again.refresh_from_db()
    assert again.status == SyncJobStatus.SUCCESS
    assert (again.provider_order_id, again.provider_payment_id) == (job.provider_order_id, job.provider_payment_id)
    assert len(square.app.requests_to("POST", ORDERS)) == 1
    assert len(square.app.requests_to("POST", PAYMENTS)) == 1
    assert AuditEntry.objects.filter(object_id=str(again.pk), reason="found at the provider").exists()


def test_a_worker_killed_between_claim_and_push_is_pushed_once_later_the_same_day(square, clock):
    job = SyncJobFactory()

    # given: a worker took the job (claim + set aside) and died before pushing
    taken, _selected = take_due_jobs(batch_size=50)
    assert [t.job.pk for t in taken] == [job.pk]
    claim = Claim.objects.get(key=sync_claim_key(order_id=job.order_id, provider="square", day=MORNING.date()))
    assert claim.completed_at is None

    # when: 5 minutes later, the job is not due and its claim is still held
    clock.shift(timedelta(minutes=5))
    assert push_due_jobs().selected == 0
    # even a row made due again (by hand, or a clock skew) is not pushed while the lease holds
    SyncJob.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
    held = push_due_jobs()
    assert (held.selected, held.taken) == (1, 0)
    assert square.app.requests == []

    # when: the lease has run out, later the same day (the job's set-aside by our clock; the
    # claim's lease by the database's, the one that decides it: core.claims)
    clock.shift(timedelta(minutes=11))
    Claim.objects.filter(pk=claim.pk).update(lease_expires_at=claim.lease_expires_at - timedelta(minutes=11))
    assert timezone.now().date() == MORNING.date()
    later = push_due_jobs()

    # then: pushed exactly once
    job.refresh_from_db()
    orders, payments = at_square(square, job)
    assert (later.taken, later.succeeded) == (1, 1)
    assert job.status == SyncJobStatus.SUCCESS
    assert (len(orders), len(payments)) == (1, 1)
    assert len(square.app.requests_to("POST", ORDERS)) == 1
    claim.refresh_from_db()
    assert claim.completed_at is not None
    assert transitions(job) == [("pending", "success")]


def test_an_unknown_provider_is_a_dead_letter_and_nothing_is_sent(square, clock):
    job = SyncJobFactory(provider="lightspeed")

    result = push_due_jobs()

    job.refresh_from_db()
    assert result.dead == 1
    assert (job.status, job.attempts, job.last_error_code) == ("dead", 1, "unknown_provider")
    assert job.last_error == "Unknown POS provider 'lightspeed' (known: square). Nothing was sent."
    assert square.app.requests == []
    assert dead_letter_beacons() == 1
    clock.shift(timedelta(days=0, hours=3))
    assert push_due_jobs().selected == 0
    assert square.app.requests == []


def test_a_connection_without_a_token_is_a_dead_letter_and_nothing_is_sent(square, clock):
    job = SyncJobFactory(order=OrderFactory(connection__access_token="", connection__restaurant_name="Chez Nous"))

    push_due_jobs()

    job.refresh_from_db()
    assert (job.status, job.last_error_code) == ("dead", "missing_credentials")
    assert f"POS connection #{job.order.connection_id} (Chez Nous) has no access token" in job.last_error
    assert square.app.requests == []
    assert dead_letter_beacons() == 1
    clock.shift(timedelta(hours=3))
    assert push_due_jobs().selected == 0
    assert square.app.requests == []


def test_a_4xx_from_square_is_not_retried_and_pushes_nothing_further(square, clock):
    square.app.add_fault(method="POST", path=ORDERS, mode="status", status=400, body=SQUARE_400, times=5)
    job = SyncJobFactory()

    push_due_jobs()

    job.refresh_from_db()
    assert (job.status, job.last_error_code) == ("dead", "provider_rejected")
    assert job.last_error == "CreateOrder: Square answered 400 INVALID_VALUE: Bad line item (field order.line_items[0])"
    assert square.app.requests_to("POST", PAYMENTS) == []
    assert transitions(job) == [("pending", "dead")]
    clock.shift(timedelta(hours=3))
    assert push_due_jobs().selected == 0
    assert len(square.app.requests) == 1


def test_a_payment_square_refuses_stops_the_job_after_the_order(square, clock):
    # A real 4xx, not an injected one: the total does not match the lines, Square refuses the payment.
    job = SyncJobFactory(order=OrderFactory(total=Decimal("1.00")))

    push_due_jobs()

    job.refresh_from_db()
    assert (job.status, job.last_error_code) == ("dead", "provider_rejected")
    assert "CreatePayment: Square answered 400 INVALID_VALUE" in job.last_error
    assert square.app.payments == {}
    assert len(square.app.requests_to("POST", PAYMENTS)) == 1


def test_a_token_square_refuses_is_a_dead_letter(square, clock):
    job = SyncJobFactory(order=OrderFactory(connection__access_token="revoked-token"))
    push_due_jobs()
    job.refresh_from_db()
    assert (job.status, job.last_error_code) == ("dead", "provider_rejected")
    assert "401" in job.last_error and "revoked-token" not in job.last_error
    assert square.app.orders == {}


def test_after_max_attempts_the_job_is_a_dead_letter_with_a_beacon(square, settings, clock):
    settings.POS_SYNC_MAX_ATTEMPTS = 3
    square.app.add_fault(method="POST", path=ORDERS, mode="error_500", times=10)
    job = SyncJobFactory()

    outcomes = []
    for _ in range(3):
        outcomes.append(push_due_jobs())
        clock.shift(BACKOFF_CAP + timedelta(seconds=1))

    job.refresh_from_db()
    assert [(o.failed, o.dead) for o in outcomes] == [(1, 0), (1, 0), (0, 1)]
    assert (job.status, job.attempts) == ("dead", 3)
    assert transitions(job) == [("pending", "failed"), ("failed", "failed"), ("failed", "dead")]
    assert dead_letter_beacons() == 1
    assert push_due_jobs().selected == 0
    assert len(square.app.requests_to("POST", ORDERS)) == 3
    assert not Claim.objects.filter(completed_at__isnull=True).exists()  # every failure released its claim


def test_failures_back_off_exponentially_with_jitter(square, clock):
    rng = random.Random(5)
    for attempts in range(1, 12):
        nominal = min(BACKOFF_CAP, timedelta(minutes=1) * 2 ** (attempts - 1))
        delays = [backoff_delay(attempts, rng) for _ in range(200)]
        assert all(nominal / 2 <= d <= nominal for d in delays)
        assert len({round(d.total_seconds(), 3) for d in delays}) > 150  # spread, not one instant

    square.app.add_fault(method="POST", path=ORDERS, mode="error_500", times=1)
    job = SyncJobFactory()
    push_due_jobs()
    job.refresh_from_db()
    assert timedelta(seconds=30) <= job.next_attempt_at - timezone.now() <= timedelta(seconds=60)


def test_drain_runs_batches_until_nothing_is_due(square, clock):
    jobs = SyncJobFactory.create_batch(7)
    result = drain_due_jobs(batch_size=3)
    assert (result.selected, result.succeeded) == (7, 7)
    assert sorted(result.taken_ids) == sorted(j.pk for j in jobs)
    assert SyncJob.objects.filter(status=SyncJobStatus.SUCCESS).count() == 7
    assert len(square.app.orders) == 7


def test_a_batch_slower_than_half_its_lease_hands_the_rest_back(square, settings):
    # Real time here: the stand-in answers slowly (0.6 s a request, 1.2 s a job), the lease is 2 s,
    # so the batch hands back after its first job.
    settings.POS_SYNC_CLAIM_LEASE = timedelta(seconds=2)
    square.app.latency = 0.6
    jobs = SyncJobFactory.create_batch(5)

    result = push_due_jobs()

    assert (result.taken, result.succeeded, result.handed_back) == (5, 1, 4)
    handed = SyncJob.objects.exclude(status=SyncJobStatus.SUCCESS)
    assert handed.count() == 4 and all(job.next_attempt_at <= timezone.now() for job in handed)
    assert Claim.objects.filter(completed_at__isnull=True).count() == 0  # released, not left to expire
    square.app.latency = 0
    assert drain_due_jobs().succeeded == 4
    assert len(square.app.orders) == len(square.app.payments) == len(jobs)
