"""Acting only on what is provably ours: the ownership mark, and the push's look-up past Square's
idempotency window beside orders that merely look like ours (a restaurant's own order numbered like
ours, another application's "bo-<id>", our mark at another location), plus the orders pushed before
the mark existed."""

import copy
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from audit.models import AuditEntry
from pos_sync.keys import square_order_key, square_reference_id
from pos_sync.models import SyncJob, SyncJobStatus
from pos_sync.providers import ownership
from pos_sync.providers.base import RemoteOrder
from pos_sync.services import push_due_jobs
from sandbox.square import OUR_APPLICATION
from tests.factories.pos_sync import OrderFactory, SyncJobFactory

pytestmark = pytest.mark.django_db
MORNING = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
ORDERS, PAYMENTS, SEARCH = r"^/v2/orders$", r"^/v2/payments$", r"^/v2/orders/search$"
OTHER_APPLICATION = "restaurant-other-integration"
LINES = [
    {"name": "Pasta", "quantity": "2", "base_price_money": {"amount": 1250, "currency": "USD"}},
    {"name": "Water", "quantity": "1", "base_price_money": {"amount": 300, "currency": "USD"}},
]
SET_MENU = [{"name": "Set menu", "quantity": "1", "base_price_money": {"amount": 4500, "currency": "USD"}}]


@pytest.fixture
def clock():
    with time_machine.travel(MORNING, tick=False) as traveller:
        yield traveller


def remote(**fields) -> RemoteOrder:
    values = {
        "provider_order_id": "SQ1",
        "reference_id": "bo-1001",
        "created_at": "2026-11-25T10:00:00Z",
        "payments": (),
        "location_id": "LOC1",
        "metadata": {"bo_order_id": "1001", "bo_connection_id": "7"},
    }
    return RemoteOrder(**{**values, **fields})


def classify(order: RemoteOrder, recorded_order_id: int | None = None) -> ownership.Verdict:
    return ownership.classify(order, connection_id=7, location_id="LOC1", recorded_order_id=recorded_order_id)


def foreign_order(square, location_id: str, reference_id: str | None, **kwargs) -> dict:
    """A paid order the restaurant's other integration made: 45.00 USD of a real payment."""
    order = square.app.add_order(
        location_id=location_id, reference_id=reference_id, line_items=SET_MENU, application=OTHER_APPLICATION, **kwargs
    )
    square.app.add_external_payment(order_id=order["id"], amount=4500, currency="USD")
    return order


def look_alikes(square, job: SyncJob) -> list[dict]:
    """Orders at or beside the job's location that look like ours and are not."""
    location, order_id = job.order.connection.location_id, job.order_id
    forged = {"bo_order_id": str(order_id), "bo_connection_id": str(job.order.connection_id)}
    return [
        foreign_order(square, location, str(order_id)),  # the restaurant's own "1001"
        foreign_order(square, location, square_reference_id(order_id), metadata=forged),  # another app's "bo-1001"
        square.app.add_order(  # our own mark, but at another location: not this connection's
            location_id="ELSEWHERE", reference_id=square_reference_id(order_id), line_items=LINES, metadata=forged
        ),
    ]


def ours_at_square(square, job: SyncJob) -> list[dict]:
    """The orders at Square that carry our mark for this job's order, as our application reads them."""
    mark = ownership.mark(order_id=job.order_id, connection_id=job.order.connection_id)
    seen = [square.app.order_as_seen_by(order_id) for order_id in square.app.orders]
    return [
        o for o in seen if o.get("metadata") == mark.metadata and o["location_id"] == job.order.connection.location_id
    ]


# --- the decision ----------------------------------------------------------------------------------


def test_the_mark_is_a_namespaced_reference_and_our_ids_in_metadata():
    mark = ownership.mark(order_id=1001, connection_id=7)
    assert mark.reference_id == "bo-1001"
    assert mark.metadata == {"bo_order_id": "1001", "bo_connection_id": "7"}


@pytest.mark.parametrize(
    ("fields", "recorded", "ours", "look_alike"),
    [
        ({}, None, 1001, False),  # the whole mark, at our location
        ({"location_id": "LOC2"}, None, None, True),  # our mark at another location
        ({"location_id": "LOC2"}, 1001, None, True),  # even one our books recorded
        ({"metadata": {}}, None, None, True),  # bo-1001 without our metadata: another application's
        ({"metadata": {"bo_order_id": "1001", "bo_connection_id": "8"}}, None, None, True),  # another connection
        ({"metadata": {"bo_order_id": "1002", "bo_connection_id": "7"}}, None, None, True),  # disagrees with ref
        ({"metadata": {"bo_order_id": "1001"}}, None, None, True),  # half a mark
        ({"reference_id": "bo-01001"}, None, None, True),  # not the reference we write
        ({"reference_id": "1001", "metadata": {}}, None, None, True),  # bare, unrecorded: not provably ours
        ({"reference_id": "1001", "metadata": {}}, 1001, 1001, False),  # bare, recorded: ours (legacy)
        ({"reference_id": "", "metadata": {}}, 1001, 1001, False),  # whatever it says, our books recorded it
        ({"reference_id": "", "metadata": {}}, None, None, False),  # a staff order: not ours, not a look-alike
        ({"reference_id": "TABLE-4", "metadata": {}}, None, None, False),
    ],
)
def test_an_order_is_ours_only_with_the_whole_mark_at_our_location_or_in_our_books(fields, recorded, ours, look_alike):
    verdict = classify(remote(**fields), recorded_order_id=recorded)
    assert (verdict.order_id, verdict.ours, verdict.look_alike) == (ours, ours is not None, look_alike)


# --- the push's look-up past the idempotency window ---------------------------------------------


def test_past_the_window_look_alikes_are_never_taken_for_ours_and_ours_is_pushed_once(square, clock):
    # given: our order's first attempt reached nothing (a 500), then the restaurant's other
    # integration made orders that look like ours, each paid 45.00 USD
    square.app.add_fault(method="POST", path=ORDERS, mode="error_500", times=1)
    job = SyncJobFactory()
    push_due_jobs()
    foreign = look_alikes(square, job)
    before = copy.deepcopy(square.app.state())

    # when: past the window (Square may have forgotten our key: here it has) the push reads first
    clock.shift(timedelta(hours=25))
    square.app.expire_idempotency()
    push_due_jobs()

    # then: nothing foreign was taken; ours was created once, paid once, and recorded
    job.refresh_from_db()
    assert job.status == SyncJobStatus.SUCCESS
    assert AuditEntry.objects.filter(object_id=str(job.pk), reason="pushed").exists()
    assert len(square.app.requests_to("POST", SEARCH)) == 1
    creates = square.app.requests_to("POST", ORDERS)
    key = square_order_key(job.order_id)
    assert [(r.status, r.body["idempotency_key"]) for r in creates] == [(500, key), (200, key)]
    [ours] = ours_at_square(square, job)
    assert job.provider_order_id == ours["id"] not in {o["id"] for o in foreign}
    [payment] = square.app.payments_for_order(ours["id"])
    assert job.provider_payment_id == payment["id"] and payment["reference_id"] == square_reference_id(job.order_id)
    assert len(square.app.requests_to("POST", PAYMENTS)) == 1
    for order in foreign:  # untouched: same version, same single payment, no refund
        assert square.app.orders[order["id"]] == next(o for o in before["orders"] if o["id"] == order["id"])
    assert len(square.app.payments) == len(before["payments"]) + 1
    assert square.app.refunds == {}


def test_past_the_window_our_marked_order_is_found_beside_look_alikes_and_only_paid(square, settings, clock):
    # given: our first attempt created the order at Square and then lost the answer
    settings.SQUARE_TIMEOUT_SECONDS = 1.0
    square.app.add_fault(method="POST", path=ORDERS, mode="timeout_after_commit", delay=2.0)
    job = SyncJobFactory()
    push_due_jobs()
    foreign = look_alikes(square, job)
    # the restaurant's "1001" is the oldest order of the window, as in the incident
    square.app.orders[foreign[0]["id"]]["created_at"] = (MORNING - timedelta(minutes=1)).isoformat()

    clock.shift(timedelta(hours=25))
    square.app.expire_idempotency()
    push_due_jobs()

    job.refresh_from_db()
    [ours] = ours_at_square(square, job)
    assert (job.status, job.provider_order_id) == (SyncJobStatus.SUCCESS, ours["id"])
    assert len(square.app.requests_to("POST", ORDERS)) == 1  # never created again
    assert [p["id"] for p in square.app.payments_for_order(ours["id"])] == [job.provider_payment_id]
    assert len(square.app.payments_for_order(foreign[0]["id"])) == 1  # the restaurant's, not ours


def test_a_legacy_order_our_books_recorded_is_found_not_pushed_again(square, clock):
    # given: an order pushed before the mark existed (bare reference, no metadata), recorded by its job
    order = OrderFactory()
    legacy = square.app.add_order(
        location_id=order.connection.location_id, reference_id=str(order.pk), line_items=LINES
    )
    paid = square.app.add_external_payment(order_id=legacy["id"], amount=2800, currency="USD")
    SyncJobFactory(
        order=order,
        status=SyncJobStatus.SUCCESS,
        first_attempted_at=MORNING,
        provider_order_id=legacy["id"],
        provider_payment_id=paid["id"],
    )
    # and: the restaurant's own order with the same bare number, older than ours
    foreign_order(square, order.connection.location_id, str(order.pk))
    clock.shift(timedelta(days=2))
    square.app.expire_idempotency()
    again = SyncJobFactory(order=order)  # pushed again by hand, days later

    push_due_jobs()

    again.refresh_from_db()
    assert again.status == SyncJobStatus.SUCCESS
    assert (again.provider_order_id, again.provider_payment_id) == (legacy["id"], paid["id"])
    assert square.app.requests_to("POST", ORDERS) == [] and square.app.requests_to("POST", PAYMENTS) == []


def test_a_legacy_bare_order_we_did_not_record_is_not_taken_for_ours(square, clock):
    # given: a bare-reference order with our number that no job of ours recorded (perhaps an old
    # keyless push of ours, perhaps the restaurant's): not provably ours
    square.app.add_fault(method="POST", path=ORDERS, mode="error_500", times=1)
    job = SyncJobFactory()
    push_due_jobs()
    bare = square.app.add_order(
        location_id=job.order.connection.location_id, reference_id=str(job.order_id), line_items=LINES
    )
    clock.shift(timedelta(hours=25))
    square.app.expire_idempotency()

    push_due_jobs()

    job.refresh_from_db()
    [ours] = ours_at_square(square, job)
    assert job.status == SyncJobStatus.SUCCESS and job.provider_order_id == ours["id"] != bare["id"]
    assert square.app.payments_for_order(bare["id"]) == []  # we never pay what is not provably ours
    assert square.app.order_as_seen_by(bare["id"], OUR_APPLICATION).get("metadata") is None
