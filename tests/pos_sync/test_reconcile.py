"""reconcile_pos against the Square stand-in: duplicates of our orders (marked copies, as a push
past Square's key window can leave them) seeded beside orders that look like ours and are not (the
restaurant's own "1001" paid 45.00 USD, another application's "bo-1001"), and legacy orders pushed
before the mark existed. It only ever refunds provable duplicates of ours, and only as many as the
operator expects."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.beacons import flush_pending_beacons
from audit.models import CriticalBeacon
from pos_sync.beacons import RECONCILE_NOT_OURS
from pos_sync.keys import square_reference_id, square_refund_key
from pos_sync.models import PosConnection, SyncJob, SyncJobStatus
from pos_sync.providers import ownership
from pos_sync.services import drain_due_jobs
from pos_sync.services import reconcile as reconcile_service
from tests.factories.pos_sync import OrderFactory, PosConnectionFactory, SyncJobFactory
from tests.pos_sync.standin import LATE, SHORT_TIMEOUT

pytestmark = pytest.mark.django_db
REFUNDS, SEARCH = r"^/v2/refunds$", r"^/v2/orders/search$"
OTHER_APPLICATION = "restaurant-other-integration"
LINES = [
    {"name": "Pasta", "quantity": "2", "base_price_money": {"amount": 1250, "currency": "USD"}},
    {"name": "Water", "quantity": "1", "base_price_money": {"amount": 300, "currency": "USD"}},
]
SET_MENU = [{"name": "Set menu", "quantity": "1", "base_price_money": {"amount": 4500, "currency": "USD"}}]


def stamp(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def copy_at_square(square, job: SyncJob, *, paid: bool = True, created_at: datetime | None = None) -> str | None:
    """Another copy of the job's order at Square, with our mark, and its payment: what a push that
    Square no longer recognised the key of made. Returns the copy's payment id."""
    mark = ownership.mark(order_id=job.order_id, connection_id=job.order.connection_id)
    order = square.app.add_order(
        location_id=job.order.connection.location_id,
        reference_id=mark.reference_id,
        metadata=mark.metadata,
        line_items=LINES,
        created_at=stamp(created_at),
    )
    if not paid:
        return None
    return square.app.add_external_payment(order_id=order["id"], amount=2800, currency="USD")["id"]


def foreign_at_square(square, location_id: str, reference_id: str | None, **kwargs) -> str:
    """A paid order of the restaurant's other integration; returns its payment id."""
    order = square.app.add_order(
        location_id=location_id, reference_id=reference_id, line_items=SET_MENU, application=OTHER_APPLICATION, **kwargs
    )
    return square.app.add_external_payment(order_id=order["id"], amount=4500, currency="USD")["id"]


def first_id(square, reference_id: str) -> str:
    [order] = square.app.orders_with_reference(reference_id)
    return order["id"]


def reconcile(*args: str, err: StringIO | None = None) -> str:
    out = StringIO()
    call_command("reconcile_pos", "--since", "7d", *args, stdout=out, stderr=err or StringIO())
    return out.getvalue()


def table(out: str) -> dict[str, list[str]]:
    """The summary table's rows by restaurant: orders, ours, dup. of ours, not ours, to refund,
    refunded, already, failed."""
    rows = [line.split("|") for line in out.splitlines() if line.count("|") == 8]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows if cells[0].strip() != "restaurant"}


@pytest.fixture
def duplicated(square):
    """Six orders pushed properly over two restaurants, then duplicates of ours seeded at Square
    beside look-alikes that are not ours."""
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
    forged = {"bo_order_id": str(jobs[1].order_id), "bo_connection_id": str(first.pk)}
    foreign = [
        foreign_at_square(square, first.location_id, str(jobs[0].order_id)),  # the restaurant's own "1001"
        foreign_at_square(square, first.location_id, square_reference_id(jobs[1].order_id), metadata=forged),
        foreign_at_square(square, second.location_id, str(jobs[4].order_id)),
    ]
    square.app.add_order(location_id=first.location_id, reference_id=None, line_items=LINES)  # staff order
    return {
        "jobs": jobs,
        "extra_payments": extra,
        "kept_payments": [j.provider_payment_id for j in jobs],
        "foreign": foreign,
    }


def test_the_dry_run_lists_the_look_alikes_as_not_ours_and_refunds_nothing(square, duplicated):
    out = reconcile()

    assert square.app.requests_to("POST", REFUNDS) == [] and square.app.refunds == {}
    assert "dry run: nothing is refunded" in out.splitlines()[0]
    jobs = duplicated["jobs"]
    for payment_id in duplicated["extra_payments"]:
        assert f"payment {payment_id} 28.00 USD: to refund" in out
    for payment_id in duplicated["foreign"]:
        assert payment_id not in out  # a foreign payment is never even a candidate
    assert out.count(": not ours: ") == 3
    assert (
        f"Trattoria: not ours: POS order {first_id(square, str(jobs[0].order_id))} reference '{jobs[0].order_id}'"
        in out
    )
    assert f"reference 'bo-{jobs[1].order_id}' (our reference without our metadata" in out
    assert f"order {jobs[2].order_id} copy" not in out  # an unpaid copy has no payment line ...
    assert f"(kept {jobs[5].provider_order_id})" in out
    rows = table(out)
    # orders, ours, dup. of ours, not ours, to refund, refunded, already, failed
    assert rows["Trattoria"] == ["11", "8", "4", "3", "3", "0", "0", "0"]  # ... but counts as a duplicate
    assert rows["Bistro"] == ["5", "4", "2", "1", "2", "0", "0", "0"]
    assert rows["TOTAL"] == ["16", "12", "6", "4", "5", "0", "0", "0"]


def test_refund_duplicates_refunds_exactly_the_expected_duplicates_of_ours_and_a_second_run_none(square, duplicated):
    out = reconcile("--refund-duplicates", "--expect", "5")

    refunds = list(square.app.refunds.values())
    assert sorted(r["payment_id"] for r in refunds) == sorted(duplicated["extra_payments"])
    assert all(r["amount_money"] == {"amount": 2800, "currency": "USD"} for r in refunds)
    untouched = set(duplicated["kept_payments"]) | set(duplicated["foreign"])
    assert not {r["payment_id"] for r in refunds} & untouched
    assert all("refunded_money" not in square.app.payments[p] for p in untouched)
    keys = [r.body["idempotency_key"] for r in square.app.requests_to("POST", REFUNDS)]
    assert sorted(keys) == sorted(square_refund_key(p) for p in duplicated["extra_payments"])
    assert out.count(": refunded as ") == 5
    assert table(out)["TOTAL"][4:] == ["5", "5", "0", "0"]

    again = reconcile("--refund-duplicates", "--expect", "0")

    assert len(square.app.refunds) == 5
    assert len(square.app.requests_to("POST", REFUNDS)) == 5  # not even asked twice
    assert again.count(": already refunded") == 5
    assert table(again)["TOTAL"][4:] == ["0", "0", "5", "0"]


@pytest.mark.parametrize("expect", ["4", "6", "0"])
def test_a_wrong_expect_refunds_nothing_and_fails(square, duplicated, expect):
    out = StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("reconcile_pos", "--since", "7d", "--refund-duplicates", "--expect", expect, stdout=out)

    assert str(excinfo.value) == (
        f"Refused (refund_count_mismatch): 5 refund(s) planned but {expect} expected: nothing was refunded. "
        "Run without --refund-duplicates to see the plan."
    )
    assert square.app.requests_to("POST", REFUNDS) == [] and square.app.refunds == {}
    assert out.getvalue().count(": to refund") == 5  # the plan is shown all the same
    assert table(out.getvalue())["TOTAL"][4:] == ["5", "0", "0", "0"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--refund-duplicates"], "--refund-duplicates needs --expect N"),
        (["--expect", "5"], "--expect N goes with --refund-duplicates"),
        (["--refund-duplicates", "--expect", "5", "--dry-run"], "--dry-run and --refund-duplicates exclude"),
        (["--refund-duplicates", "--expect", "-1"], "cannot be negative"),
        (["--refund-duplicates", "--expect", "five"], "invalid int value"),
    ],
)
def test_bad_options_change_nothing_and_read_nothing(square, duplicated, args, message):
    square.app.requests.clear()
    with pytest.raises(CommandError, match=message):
        reconcile(*args)
    assert square.app.requests == []


def test_legacy_orders_are_ours_only_when_our_books_recorded_them(square):
    # given: orders pushed before the mark (bare reference, no metadata), recorded by their jobs
    connection = PosConnectionFactory(restaurant_name="Old Diner")
    orders = [OrderFactory(connection=connection) for _ in range(2)]
    legacy = {}
    for order in orders:
        remote = square.app.add_order(location_id=connection.location_id, reference_id=str(order.pk), line_items=LINES)
        paid = square.app.add_external_payment(order_id=remote["id"], amount=2800, currency="USD")
        SyncJobFactory(
            order=order, status=SyncJobStatus.SUCCESS, provider_order_id=remote["id"], provider_payment_id=paid["id"]
        )
        legacy[order.pk] = (remote["id"], paid["id"])
    # and: a bare copy of the first that no job recorded (an old keyless retry of ours, or the
    # restaurant's own order with the same number: nobody can tell), paid
    unrecorded = square.app.add_order(
        location_id=connection.location_id, reference_id=str(orders[0].pk), line_items=LINES
    )
    unrecorded_payment = square.app.add_external_payment(order_id=unrecorded["id"], amount=2800, currency="USD")
    # and: the second was pushed again later with the mark (recorded by the later job): its legacy
    # copy is now a provable duplicate of ours
    later = SyncJobFactory(order=orders[1], status=SyncJobStatus.SUCCESS)
    marked_payment = copy_at_square(square, later)
    marked_order = square.app.payments[marked_payment]["order_id"]
    SyncJob.objects.filter(pk=later.pk).update(provider_order_id=marked_order, provider_payment_id=marked_payment)

    dry = reconcile()

    listed = f"not ours: POS order {unrecorded['id']} reference '{orders[0].pk}' (a bare number our books never"
    assert listed in dry
    assert f"payment {unrecorded_payment}" not in dry  # never a refund candidate
    assert f"order {orders[1].pk} copy {legacy[orders[1].pk][0]} (kept {marked_order}) payment" in dry
    assert table(dry)["Old Diner"] == ["4", "3", "1", "1", "1", "0", "0", "0"]

    reconcile("--refund-duplicates", "--expect", "1")

    assert [r["payment_id"] for r in square.app.refunds.values()] == [legacy[orders[1].pk][1]]


def test_a_failed_refund_fails_the_run_and_the_next_run_finishes_without_doubling(square, settings, duplicated):
    settings.SQUARE_TIMEOUT_SECONDS = SHORT_TIMEOUT
    square.app.add_fault(method="POST", path=REFUNDS, mode="timeout_after_commit", delay=LATE, times=1)
    square.app.add_fault(method="POST", path=REFUNDS, mode="error_500", times=1)

    with pytest.raises(CommandError, match="2 connection"):
        reconcile("--refund-duplicates", "--expect", "5")
    assert len(square.app.refunds) == 4  # the timed-out one was made, the 500 was not

    out = reconcile("--refund-duplicates", "--expect", "1")  # what is left: the one Square refused
    assert sorted(r["payment_id"] for r in square.app.refunds.values()) == sorted(duplicated["extra_payments"])
    assert table(out)["TOTAL"][4:] == ["1", "1", "4", "0"]


def test_search_orders_is_paged(square):
    job = SyncJobFactory()
    drain_due_jobs()
    job.refresh_from_db()
    for _ in range(520):
        square.app.add_order(location_id=job.order.connection.location_id, reference_id=None, line_items=LINES)
    extra = copy_at_square(square, job)

    out = reconcile("--refund-duplicates", "--expect", "1")

    searches = square.app.requests_to("POST", SEARCH)
    assert len(searches) == 2
    assert "cursor" not in searches[0].body and searches[1].body["cursor"]
    assert [r["payment_id"] for r in square.app.refunds.values()] == [extra]
    assert table(out)["TOTAL"][:5] == ["522", "2", "1", "520", "1"]


@pytest.mark.parametrize("since", ["yesterday", "7x", "", "2026-13-45"])
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


def test_a_pos_that_cannot_be_read_fails_the_run_and_refunds_nothing_anywhere(square, duplicated):
    square.app.add_fault(method="POST", path=SEARCH, mode="error_500", times=1)  # Trattoria's, read first
    err = StringIO()

    with pytest.raises(CommandError) as excinfo:
        reconcile("--refund-duplicates", "--expect", "2", err=err)  # Bistro's plan: it matches

    assert str(excinfo.value) == (
        "Refused (reconcile_incomplete): Could not read the POS of Trattoria: nothing was refunded. "
        "Run without --refund-duplicates to see the plan."
    )
    assert "Trattoria: provider_unavailable: SearchOrders: Square answered 500" in err.getvalue()
    assert square.app.requests_to("POST", REFUNDS) == []
    square.app.add_fault(method="POST", path=SEARCH, mode="error_500", times=1)
    with pytest.raises(CommandError, match="1 connection"):  # a dry run that cannot read fails too
        reconcile()


def test_look_alikes_at_volume_raise_one_critical_beacon_naming_the_connection(square, duplicated, monkeypatch):
    # given the threshold at the 2 look-alikes Trattoria's POS holds (Bistro holds 1)
    monkeypatch.setattr(reconcile_service, "RECONCILE_NOT_OURS_ALERT_AT", 2)
    trattoria = PosConnection.objects.get(restaurant_name="Trattoria")

    # when a dry run reads both POS
    out = reconcile()
    flush_pending_beacons()

    # then one critical beacon, for Trattoria only, whose alert names and links the connection
    assert out.count("Trattoria: not ours: ") == 2 and out.count("Bistro: not ours: ") == 1
    (beacon,) = CriticalBeacon.objects.filter(kind=RECONCILE_NOT_OURS)
    assert beacon.details["connection_id"] == trattoria.pk
    assert beacon.details["look_alikes"] == 2
    assert len(beacon.details["examples"]) == 2


def test_a_few_look_alikes_raise_no_beacon(square, duplicated):
    reconcile()
    flush_pending_beacons()

    assert not CriticalBeacon.objects.filter(kind=RECONCILE_NOT_OURS).exists()
