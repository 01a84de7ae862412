"""The Square stand-in answers the official SDK the way Square does: auth, key lengths, replay,
paging, payments that complete orders, refunds. Driven through the SDK itself."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from square import Square
from square.core.api_error import ApiError

from sandbox.square import PAYMENT_KEY_MAX
from tests.factories.pos_sync import SANDBOX_TOKEN
from tests.pos_sync.standin import LATE, SHORT_TIMEOUT

NO_RETRIES = {"max_retries": 0}
LINES = [{"name": "Pasta", "quantity": "2", "base_price_money": {"amount": 1250, "currency": "USD"}}]


def sdk(square, token: str | None = SANDBOX_TOKEN, timeout: float = 10.0) -> Square:
    return Square(token=token, base_url=square.url, timeout=timeout)


def create_order(client: Square, key: str | None, reference_id: str = "1", location_id: str = "L1", lines=LINES):
    kwargs = {"idempotency_key": key} if key is not None else {}
    return client.orders.create(
        order={"location_id": location_id, "reference_id": reference_id, "line_items": lines},
        request_options=NO_RETRIES,
        **kwargs,
    ).order


def pay(client: Square, order_id: str, key: str, amount: int = 2500, location_id: str = "L1"):
    return client.payments.create(
        source_id="EXTERNAL",
        idempotency_key=key,
        amount_money={"amount": amount, "currency": "USD"},
        order_id=order_id,
        location_id=location_id,
        external_details={"type": "OTHER", "source": "test"},
        request_options=NO_RETRIES,
    ).payment


def error_of(excinfo: pytest.ExceptionInfo[ApiError]) -> tuple[int, str, str | None]:
    first = excinfo.value.errors[0]
    return excinfo.value.status_code, first.code, first.field


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_a_bearer_token_square_knows_is_required(square, token):
    with pytest.raises(ApiError) as excinfo:
        create_order(sdk(square, token=token), "k1")
    assert excinfo.value.status_code == 401
    assert excinfo.value.errors[0].category == "AUTHENTICATION_ERROR"
    assert square.app.orders == {}
    assert len(square.app.requests_to("POST", r"^/v2/orders$")) == 1  # recorded all the same


def test_create_order_keys_up_to_192_characters(square):
    client = sdk(square)
    assert create_order(client, "k" * 192).id
    with pytest.raises(ApiError) as excinfo:
        create_order(client, "k" * 193, reference_id="2")
    assert error_of(excinfo) == (400, "VALUE_TOO_LONG", "idempotency_key")
    assert len(square.app.orders) == 1


@pytest.mark.parametrize(("key", "code"), [("", "VALUE_TOO_SHORT"), ("p" * (PAYMENT_KEY_MAX + 1), "VALUE_TOO_LONG")])
def test_create_payment_keys_are_1_to_45_characters(square, key, code):
    client = sdk(square)
    order = create_order(client, "order-1")
    with pytest.raises(ApiError) as excinfo:
        pay(client, order.id, key)
    assert error_of(excinfo) == (400, code, "idempotency_key")
    assert pay(client, order.id, "p" * PAYMENT_KEY_MAX).status == "COMPLETED"
    assert len(square.app.payments) == 1


def test_create_payment_without_a_key_is_refused(square):
    order = create_order(sdk(square), "order-1")
    body = {
        "source_id": "EXTERNAL",
        "amount_money": {"amount": 2500, "currency": "USD"},
        "order_id": order.id,
        "external_details": {"type": "OTHER", "source": "x"},
    }
    answer = httpx.post(f"{square.url}/v2/payments", json=body, headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == "MISSING_REQUIRED_PARAMETER"
    assert square.app.payments == {}


def test_same_key_same_request_replays_and_a_changed_request_is_refused(square):
    client = sdk(square)
    first = create_order(client, "same-key")
    again = create_order(client, "same-key")
    assert again.id == first.id
    with pytest.raises(ApiError) as excinfo:
        create_order(client, "same-key", reference_id="other")
    assert error_of(excinfo)[:2] == (400, "IDEMPOTENCY_KEY_REUSED")
    assert len(square.app.orders) == 1

    payment = pay(client, first.id, "pay-key")
    assert pay(client, first.id, "pay-key").id == payment.id
    assert len(square.app.payments) == 1


def test_keys_are_scoped_per_endpoint_and_forgotten_when_the_window_passes(square):
    client = sdk(square)
    order = create_order(client, "shared")
    assert pay(client, order.id, "shared").order_id == order.id  # same string, other endpoint
    square.app.expire_idempotency()
    assert create_order(client, "shared").id != order.id  # Square no longer knows the key
    assert len(square.app.orders) == 2


def test_a_payment_completes_its_order_and_must_match_the_amount_due(square):
    client = sdk(square)
    order = create_order(client, "o")
    with pytest.raises(ApiError) as excinfo:
        pay(client, order.id, "too-little", amount=100)
    assert error_of(excinfo) == (400, "INVALID_VALUE", "amount_money")
    with pytest.raises(ApiError) as excinfo:
        pay(client, order.id, "elsewhere", location_id="L2")
    assert error_of(excinfo) == (400, "INVALID_VALUE", "location_id")
    payment = pay(client, order.id, "right")
    stored = square.app.orders[order.id]
    assert stored["state"] == "COMPLETED"
    assert [t["payment_id"] for t in stored["tenders"]] == [payment.id]
    with pytest.raises(ApiError) as excinfo:
        pay(client, order.id, "second")  # a completed order takes no second payment
    assert excinfo.value.status_code == 400
    with pytest.raises(ApiError) as excinfo:
        pay(client, "NO_SUCH_ORDER", "third")
    assert excinfo.value.status_code == 404
    assert len(square.app.payments) == 1


def test_search_orders_pages_with_a_cursor_bound_to_its_query(square):
    client = sdk(square)
    old = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    square.app.add_order(location_id="L1", reference_id="old", line_items=LINES, created_at=old)
    made = [create_order(client, f"k{i}", reference_id=str(i)).id for i in range(7)]
    create_order(client, "elsewhere", reference_id="x", location_id="L2")
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    query = {
        "filter": {"date_time_filter": {"created_at": {"start_at": since}}},
        "sort": {"sort_field": "CREATED_AT", "sort_order": "ASC"},
    }

    seen, cursor, pages = [], None, 0
    while True:
        kwargs = {"cursor": cursor} if cursor else {}
        page = client.orders.search(location_ids=["L1"], query=query, limit=3, request_options=NO_RETRIES, **kwargs)
        seen += [o.id for o in page.orders or []]
        pages += 1
        cursor = page.cursor
        if not cursor:
            break
    assert seen == made  # oldest first, the 10-day-old one and the other location left out
    assert pages == 3

    first = client.orders.search(location_ids=["L1"], query=query, limit=3, request_options=NO_RETRIES)
    with pytest.raises(ApiError) as excinfo:
        client.orders.search(location_ids=["L1"], query={}, cursor=first.cursor, limit=3, request_options=NO_RETRIES)
    assert error_of(excinfo)[:2] == (400, "INVALID_CURSOR")
    wrong_sort = {**query, "sort": {"sort_field": "UPDATED_AT"}}
    with pytest.raises(ApiError) as excinfo:
        client.orders.search(location_ids=["L1"], query=wrong_sort, request_options=NO_RETRIES)
    assert excinfo.value.status_code == 400


def test_refunds_need_a_key_replay_it_and_never_exceed_the_payment(square):
    client = sdk(square)
    order = create_order(client, "o")
    payment = pay(client, order.id, "p")

    def refund(key: str, amount: int = 2500):
        return client.refunds.refund_payment(
            idempotency_key=key,
            payment_id=payment.id,
            amount_money={"amount": amount, "currency": "USD"},
            reason="duplicate",
            request_options=NO_RETRIES,
        ).refund

    with pytest.raises(ApiError) as excinfo:
        refund("r" * 46)
    assert error_of(excinfo) == (400, "VALUE_TOO_LONG", "idempotency_key")
    first = refund("refund-1")
    assert refund("refund-1").id == first.id
    with pytest.raises(ApiError) as excinfo:
        refund("refund-2")  # nothing left to refund
    assert error_of(excinfo)[:2] == (400, "REFUND_AMOUNT_INVALID")
    assert len(square.app.refunds) == 1
    assert square.app.payments[payment.id]["refunded_money"] == {"amount": 2500, "currency": "USD"}
    assert [r["tender_id"] for r in square.app.orders[order.id]["refunds"]] == [payment.id]


def test_timeout_after_commit_creates_the_order_but_the_client_gives_up(square):
    square.app.add_fault(method="POST", path=r"^/v2/orders$", mode="timeout_after_commit", delay=LATE)
    client = sdk(square, timeout=SHORT_TIMEOUT)
    with pytest.raises(httpx.TimeoutException):
        create_order(client, "slow")
    assert len(square.app.orders) == 1
    assert create_order(sdk(square), "slow").id == next(iter(square.app.orders))
    assert len(square.app.orders) == 1
    assert len(square.app.requests_to("POST", r"^/v2/orders$")) == 2


def test_order_metadata_is_kept_and_only_the_application_that_wrote_it_reads_it(square):
    square.app.add_token("other-token", application="other-integration")
    ours, theirs = sdk(square), sdk(square, token="other-token")
    mine = ours.orders.create(
        order={"location_id": "L1", "reference_id": "bo-7", "line_items": LINES, "metadata": {"bo_order_id": "7"}},
        idempotency_key="m1",
        request_options=NO_RETRIES,
    ).order
    forged = theirs.orders.create(
        order={"location_id": "L1", "reference_id": "bo-7", "line_items": LINES, "metadata": {"bo_order_id": "7"}},
        idempotency_key="m1",  # keys are per token: no clash with ours
        request_options=NO_RETRIES,
    ).order
    assert mine.metadata == {"bo_order_id": "7"} and forged.metadata == {"bo_order_id": "7"}

    def seen_by(client: Square) -> dict[str, dict | None]:
        found = client.orders.search(location_ids=["L1"], request_options=NO_RETRIES).orders
        return {o.id: o.metadata for o in found}

    # every application finds both orders, each with its own entries only
    assert seen_by(ours) == {mine.id: {"bo_order_id": "7"}, forged.id: None}
    assert seen_by(theirs) == {mine.id: None, forged.id: {"bo_order_id": "7"}}


@pytest.mark.parametrize(
    "metadata",
    [
        {f"k{i}": "v" for i in range(11)},  # at most 10 entries
        {"bad key": "v"},  # [a-zA-Z0-9_-]
        {"k" * 61: "v"},  # at most 60 characters
        {"k": "v" * 256},  # values at most 255
    ],
)
def test_order_metadata_beyond_squares_limits_is_refused(square, metadata):
    with pytest.raises(ApiError) as excinfo:
        sdk(square).orders.create(
            order={"location_id": "L1", "line_items": LINES, "metadata": metadata}, request_options=NO_RETRIES
        )
    assert excinfo.value.status_code == 400
    assert square.app.orders == {}


def test_search_orders_filters_by_state_and_an_inclusive_time_range(square):
    client = sdk(square)
    stamps = ["2026-11-01T10:00:00Z", "2026-11-02T10:00:00Z", "2026-11-03T10:00:00Z", "2026-11-04T10:00:00Z"]
    made = [
        square.app.add_order(location_id="L1", reference_id=str(i), line_items=LINES, created_at=t)
        for i, t in enumerate(stamps)
    ]
    square.app.add_external_payment(order_id=made[1]["id"], amount=2500, currency="USD")  # COMPLETED now
    square.app.add_order(location_id="L2", reference_id="elsewhere", line_items=LINES, created_at=stamps[1])

    def search(**query_filter) -> list[str]:
        query = {"filter": query_filter, "sort": {"sort_field": "CREATED_AT", "sort_order": "ASC"}}
        found = client.orders.search(location_ids=["L1"], query=query, request_options=NO_RETRIES).orders or []
        return [o.reference_id for o in found]

    window = {"created_at": {"start_at": stamps[1], "end_at": stamps[2]}}
    assert search(date_time_filter=window) == ["1", "2"]  # both ends inclusive, L1 only
    assert search(date_time_filter=window, state_filter={"states": ["OPEN"]}) == ["2"]  # filters ANDed
    assert search(state_filter={"states": ["COMPLETED"]}) == ["1"]
    two_ranges = {**window, "closed_at": {"start_at": stamps[0]}}
    with pytest.raises(ApiError) as excinfo:
        search(date_time_filter=two_ranges)  # one time range at a time
    assert excinfo.value.status_code == 400


def test_a_paged_search_without_an_end_stops_at_the_time_of_its_first_request(square):
    client = sdk(square)
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    query = {
        "filter": {"date_time_filter": {"created_at": {"start_at": since}}},
        "sort": {"sort_field": "CREATED_AT", "sort_order": "ASC"},
    }
    first = [create_order(client, f"k{i}", reference_id=str(i)).id for i in range(3)]
    page = client.orders.search(location_ids=["L1"], query=query, limit=2, request_options=NO_RETRIES)
    later = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    square.app.add_order(location_id="L1", reference_id="later", line_items=LINES, created_at=later)
    rest = client.orders.search(
        location_ids=["L1"], query=query, limit=2, cursor=page.cursor, request_options=NO_RETRIES
    )
    assert [o.id for o in page.orders] + [o.id for o in rest.orders] == first
    assert rest.cursor is None
