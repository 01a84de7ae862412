"""reconcile_pos against duplicates seeded straight into the Square stand-in, as an old cron
without idempotency keys would have left them."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from pos_sync.keys import square_refund_key
from pos_sync.models import SyncJob
from pos_sync.services import drain_due_jobs
from tests.factories.pos_sync import OrderFactory, PosConnectionFactory, SyncJobFactory
from tests.pos_sync.standin import LATE, SHORT_TIMEOUT

pytestmark = pytest.mark.django_db
REFUNDS = r"^/v2/refunds$"
LINES = [
    {"name": "Pasta", "quantity": "2", "base_price_money": {"amount": 1250, "currency": "USD"}},
    {"name": "Water", "quantity": "1", "base_price_money": {"amount": 300, "currency": "USD"}},
]


def copy_at_square(square, job: SyncJob, *, paid: bool = True, created_at: datetime | None = None) -> str | None:
    """Another copy of the job's order at Square (and its payment): what a keyless retry made.
    Returns the copy's payment id."""
    stamp = created_at.isoformat().replace("+00:00", "Z") if created_at else None
    order = square.app.add_order(
        location_id=job.order.connection.location_id, reference_id=str(job.order_id), line_items=LINES, created_at=stamp
    )
    if not paid:
        return None
    return square.app.add_external_payment(order_id=order["id"], amount=2800, currency="USD")["id"]


def reconcile(*args: str) -> str:
    out = StringIO()
    call_command("reconcile_pos", "--since", "7d", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def duplicated(square):
    """Six orders pushed properly over two restaurants, then duplicates seeded at Square."""
    first, second = PosConnectionFactory(restaurant_name="Trattoria"), PosConnectionFactory(restaurant_name="Bistro")
    jobs = [SyncJobFactory(order=OrderFactory(connection=first if i < 4 else second)) for i in range(6)]
    assert drain_due_jobs().succeeded == 6
    for job in jobs:
        job.refresh_from_db()
    now = datetime.now(UTC)
    extra = [
        copy_at_square(square, jobs[0]),  # one extra copy
        copy_at_square(square, jobs[1]),  # two extra copies
        copy_at_square(square, jobs[1]),
        copy_at_square(square, jobs[4]),  # at the other restaurant
        # created BEFORE ours: our books say which one is kept, not the age
        copy_at_square(square, jobs[5], created_at=now - timedelta(hours=1)),
    ]
    copy_at_square(square, jobs[2], paid=False)  # a copy without payment: reported, nothing to refund
    copy_at_square(square, jobs[3], created_at=now - timedelta(days=10))  # older than --since 7d: not looked at
    square.app.add_order(location_id=first.location_id, reference_id=None, line_items=LINES)  # staff order, not ours
    return {"jobs": jobs, "extra_payments": extra, "kept_payments": [j.provider_payment_id for j in jobs]}


def test_reconcile_refunds_each_extra_payment_once_and_a_second_run_refunds_nothing(square, duplicated):
    out = reconcile("--refund-duplicates")

    refunds = list(square.app.refunds.values())
    assert sorted(r["payment_id"] for r in refunds) == sorted(duplicated["extra_payments"])
    assert all(r["amount_money"] == {"amount": 2800, "currency": "USD"} for r in refunds)
    assert not {r["payment_id"] for r in refunds} & set(duplicated["kept_payments"])  # ours untouched
    keys = [r.body["idempotency_key"] for r in square.app.requests_to("POST", REFUNDS)]
    assert sorted(keys) == sorted(square_refund_key(p) for p in duplicated["extra_payments"])
    assert out.count(": refunded as ") == 5
    assert "TOTAL" in out.splitlines()[-1]
    assert out.splitlines()[-1].split("|")[5].strip() == "5"  # refunded column

    again = reconcile("--refund-duplicates")

    assert len(square.app.refunds) == 5
    assert len(square.app.requests_to("POST", REFUNDS)) == 5  # not even asked twice
    assert again.count(": already refunded") == 5
    assert again.splitlines()[-1].split("|")[5].strip() == "0"


def test_the_report_names_every_duplicate_with_its_payment(square, duplicated):
    out = reconcile()

    assert square.app.requests_to("POST", REFUNDS) == []
    jobs = duplicated["jobs"]
    for payment_id in duplicated["extra_payments"]:
        assert f"payment {payment_id} 28.00 USD: reported" in out
    assert f"order {jobs[2].order_id} copy" not in out  # an unpaid copy has no payment line ...
    rows = {line.split("|")[0].strip(): line for line in out.splitlines() if "|" in line}
    trattoria = [c.strip() for c in rows["Trattoria"].split("|")]
    assert trattoria[2:5] == ["3", "4", "3"]  # ... but counts as a duplicated order and an extra copy
    assert f"(kept {jobs[5].provider_order_id})" in out


def test_dry_run_says_what_it_would_refund_and_refunds_nothing(square, duplicated):
    out = reconcile("--refund-duplicates", "--dry-run")
    assert square.app.requests_to("POST", REFUNDS) == []
    assert square.app.refunds == {}
    assert out.count(": would refund") == 5
    assert "dry run" in out.splitlines()[0]


def test_a_failed_refund_fails_the_run_and_the_next_run_finishes_without_doubling(square, settings, duplicated):
    settings.SQUARE_TIMEOUT_SECONDS = SHORT_TIMEOUT
    square.app.add_fault(method="POST", path=REFUNDS, mode="timeout_after_commit", delay=LATE, times=1)
    square.app.add_fault(method="POST", path=REFUNDS, mode="error_500", times=1)

    with pytest.raises(CommandError, match="2 connection"):
        reconcile("--refund-duplicates")
    assert len(square.app.refunds) == 4  # the timed-out one was made, the 500 was not

    reconcile("--refund-duplicates")
    assert sorted(r["payment_id"] for r in square.app.refunds.values()) == sorted(duplicated["extra_payments"])


def test_search_orders_is_paged(square):
    job = SyncJobFactory()
    drain_due_jobs()
    job.refresh_from_db()
    for _ in range(520):
        square.app.add_order(location_id=job.order.connection.location_id, reference_id=None, line_items=LINES)
    extra = copy_at_square(square, job)

    out = reconcile("--refund-duplicates")

    searches = square.app.requests_to("POST", r"^/v2/orders/search$")
    assert len(searches) == 2
    assert "cursor" not in searches[0].body and searches[1].body["cursor"]
    assert [r["payment_id"] for r in square.app.refunds.values()] == [extra]
    assert "522" in out.splitlines()[-1]


@pytest.mark.parametrize("since", ["yesterday", "7x", ""])
def test_bad_input_is_a_command_error(since):
    with pytest.raises(CommandError, match="--since"):
        call_command("reconcile_pos", "--since", since, stdout=StringIO())


def test_an_unknown_connection_is_a_command_error():
    with pytest.raises(CommandError, match="Unknown or inactive connection"):
        call_command("reconcile_pos", "--since", "7d", "--connection", "999999", stdout=StringIO())


def test_a_connection_without_a_token_is_skipped_with_a_warning(square):
    PosConnectionFactory(access_token="", restaurant_name="No Token")
    err = StringIO()
    out = StringIO()
    call_command("reconcile_pos", "--since", "2026-01-01", stdout=out, stderr=err)
    assert "No Token: skipped." in err.getvalue() and "has no access token" in err.getvalue()
    assert "No Token -" in out.getvalue()
    assert square.app.requests == []


def test_a_pos_that_cannot_be_read_fails_the_run(square):
    SyncJobFactory()
    drain_due_jobs()
    square.app.add_fault(method="POST", path=r"^/v2/orders/search$", mode="error_500")
    err = StringIO()
    with pytest.raises(CommandError, match="1 connection"):
        call_command("reconcile_pos", "--since", "1d", "--refund-duplicates", stdout=StringIO(), stderr=err)
    assert "provider_unavailable: SearchOrders: Square answered 500" in err.getvalue()
    assert len(square.app.requests_to("POST", r"^/v2/orders/search$")) == 1
