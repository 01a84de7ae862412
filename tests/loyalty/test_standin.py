"""The Stripe stand-in honours Idempotency-Key as Stripe documents it; the loyalty tests rely on it."""

import threading
import time
from datetime import timedelta

import httpx
import pytest
import time_machine
from django.utils import timezone

from sandbox.stripe import DEFAULT_COUPON_ID, IDEMPOTENCY_KEY_MAX

from .conftest import API_KEY

AUTH = {"Authorization": f"Bearer {API_KEY}"}
CODE = {
    "promotion[type]": "coupon",
    "promotion[coupon]": DEFAULT_COUPON_ID,
    "customer": "cus_1",
    "code": "LOYALTY1Y1",
    "max_redemptions": "1",
    "metadata[user_id]": "1",
}


def post(url: str, data: dict, key: str | None = None, **headers: str) -> httpx.Response:
    extra = {"Idempotency-Key": key} if key else {}
    return httpx.post(f"{url}/v1/promotion_codes", data=data, headers={**AUTH, **extra, **headers}, timeout=5)


def test_create_returns_a_promotion_code_and_the_same_key_replays_it(stripe_standin, stripe_url):
    first = post(stripe_url, CODE, key="k1")
    again = post(stripe_url, CODE, key="k1")

    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    body = first.json()
    assert body["object"] == "promotion_code" and body["code"] == "LOYALTY1Y1" and body["active"] is True
    assert body["customer"] == "cus_1" and body["max_redemptions"] == 1 and body["metadata"] == {"user_id": "1"}
    assert body["promotion"] == {"type": "coupon", "coupon": DEFAULT_COUPON_ID}
    assert len(stripe_standin.promotion_codes) == 1
    assert len(stripe_standin.requests_to("POST", r"^/v1/promotion_codes$")) == 2


def test_the_same_key_with_other_parameters_is_an_idempotency_error(stripe_standin, stripe_url):
    post(stripe_url, CODE, key="k1")
    clash = post(stripe_url, {**CODE, "code": "OTHER1"}, key="k1")
    assert clash.status_code == 400 and clash.json()["error"]["type"] == "idempotency_error"
    assert len(stripe_standin.promotion_codes) == 1


def test_a_key_in_flight_gets_409_idempotency_key_in_use_and_one_code_is_made(stripe_standin, stripe_url):
    stripe_standin.execution_delay = 2.0  # the window for the second request: wide, whatever the machine
    first: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: first.append(post(stripe_url, CODE, key="k1")))
    worker.start()
    deadline = time.monotonic() + 60  # generous: only a first request that never arrives waits it out
    while "k1" not in stripe_standin.idempotency._in_flight and time.monotonic() < deadline:
        time.sleep(0.01)  # until the first is executing with its key in flight, however long that takes
    in_use = post(stripe_url, CODE, key="k1")
    worker.join(60)

    assert in_use.status_code == 409
    assert (in_use.json()["error"]["type"], in_use.json()["error"]["code"]) == (
        "idempotency_error",
        "idempotency_key_in_use",
    )
    assert first[0].status_code == 200 and len(stripe_standin.promotion_codes) == 1
    assert post(stripe_url, CODE, key="k1").json() == first[0].json()  # once finished: replayed


def test_a_refusal_before_execution_keeps_nothing_for_its_key(stripe_standin, stripe_url):
    del stripe_standin.coupons[DEFAULT_COUPON_ID]
    missing = post(stripe_url, CODE, key="k1")
    assert missing.status_code == 400
    assert missing.json()["error"] == {
        "type": "invalid_request_error",
        "code": "resource_missing",
        "message": f"No such coupon: '{DEFAULT_COUPON_ID}'",
        "param": "promotion[coupon]",
    }
    stripe_standin.coupons[DEFAULT_COUPON_ID] = {"id": DEFAULT_COUPON_ID}
    assert post(stripe_url, CODE, key="k1").status_code == 200


def test_keep_refusals_replays_a_validation_refusal_for_its_key(stripe_standin, stripe_url):
    stripe_standin.keep_refusals = True
    del stripe_standin.coupons[DEFAULT_COUPON_ID]
    assert post(stripe_url, CODE, key="k1").status_code == 400
    stripe_standin.coupons[DEFAULT_COUPON_ID] = {"id": DEFAULT_COUPON_ID}
    assert post(stripe_url, CODE, key="k1").status_code == 400  # replayed
    assert post(stripe_url, CODE, key="k2").status_code == 200


def test_a_500_from_execution_is_kept_and_replayed_until_the_key_expires(stripe_standin, stripe_url):
    stripe_standin.fail_executions = 1
    assert post(stripe_url, CODE, key="k1").status_code == 500
    assert post(stripe_url, CODE, key="k1").status_code == 500  # replayed, not re-executed
    assert stripe_standin.promotion_codes == {}
    with time_machine.travel(timezone.now() + timedelta(hours=24, seconds=1)):
        assert post(stripe_url, CODE, key="k1").status_code == 200
    assert len(stripe_standin.promotion_codes) == 1


def test_keys_are_kept_24_hours(stripe_standin, stripe_url):
    post(stripe_url, CODE, key="k1")
    stripe_standin.promotion_codes[next(iter(stripe_standin.promotion_codes))]["active"] = False
    with time_machine.travel(timezone.now() + timedelta(hours=23, minutes=59)):
        assert post(stripe_url, CODE, key="k1").status_code == 200
        assert len(stripe_standin.promotion_codes) == 1  # replayed
    with time_machine.travel(timezone.now() + timedelta(hours=24, minutes=1)):
        assert post(stripe_url, CODE, key="k1").status_code == 200
        assert len(stripe_standin.promotion_codes) == 2  # the key was gone: executed again


def test_keys_longer_than_255_characters_are_refused(stripe_standin, stripe_url):
    assert post(stripe_url, CODE, key="k" * IDEMPOTENCY_KEY_MAX).status_code == 200
    too_long = post(stripe_url, {**CODE, "code": "OTHER2"}, key="k" * (IDEMPOTENCY_KEY_MAX + 1))
    assert too_long.status_code == 400 and "255" in too_long.json()["error"]["message"]


def test_a_code_is_unique_among_active_codes_only(stripe_standin, stripe_url):
    first = post(stripe_url, CODE, key="k1").json()
    clash = post(stripe_url, {**CODE, "code": "loyalty1y1"}, key="k2")
    assert clash.status_code == 400 and clash.json()["error"]["code"] == "duplicate_value"
    deactivated = httpx.post(
        f"{stripe_url}/v1/promotion_codes/{first['id']}", data={"active": "false"}, headers=AUTH, timeout=5
    )
    assert deactivated.json()["active"] is False
    assert post(stripe_url, CODE, key="k3").status_code == 200


def test_requests_need_a_bearer_secret_key(stripe_standin, stripe_url):
    assert httpx.post(f"{stripe_url}/v1/promotion_codes", data=CODE).status_code == 401
    assert post(stripe_url, CODE, Authorization="Bearer sk_test_wrong").status_code == 401
    assert stripe_standin.promotion_codes == {}


def test_required_parameters_are_validated(stripe_standin, stripe_url):
    no_coupon = {k: v for k, v in CODE.items() if not k.startswith("promotion")}
    assert post(stripe_url, no_coupon).json()["error"]["code"] == "parameter_missing"
    assert post(stripe_url, {**CODE, "max_redemptions": "0"}).status_code == 400
    assert post(stripe_url, {**CODE, "customer": "nobody"}).status_code == 400
    assert post(stripe_url, {**CODE, "code": "no spaces!"}).status_code == 400
    legacy = {k: v for k, v in CODE.items() if not k.startswith("promotion")} | {"coupon": DEFAULT_COUPON_ID}
    assert post(stripe_url, legacy).status_code == 200  # API versions before 2025 sent `coupon`


def test_listing_filters_and_pages_newest_first(stripe_standin, stripe_url):
    for n in range(25):
        stripe_standin.seed_promotion_code(code=f"SEED{n}", customer=f"cus_{n % 2}", created=1000 + n)
    stripe_standin.seed_promotion_code(code="OTHER", customer="cus_0", coupon="other-coupon", active=False)

    def page(**params: str) -> dict:
        return httpx.get(f"{stripe_url}/v1/promotion_codes", params=params, headers=AUTH, timeout=5).json()

    first = page(coupon=DEFAULT_COUPON_ID, limit="10")
    assert [p["code"] for p in first["data"]] == [f"SEED{n}" for n in range(24, 14, -1)] and first["has_more"]
    rest = page(coupon=DEFAULT_COUPON_ID, limit="10", starting_after=first["data"][-1]["id"])
    last = page(coupon=DEFAULT_COUPON_ID, limit="10", starting_after=rest["data"][-1]["id"])
    assert len(rest["data"]) == 10 and rest["has_more"] and len(last["data"]) == 5 and not last["has_more"]
    assert len(page(customer="cus_0", active="true", limit="100")["data"]) == 13
    assert [p["code"] for p in page(code="seed3")["data"]] == ["SEED3"]
    assert page(active="false")["data"][0]["code"] == "OTHER"
    assert httpx.get(f"{stripe_url}/v1/promotion_codes?limit=101", headers=AUTH).status_code == 400


def test_a_missing_coupon_is_404_resource_missing(stripe_standin, stripe_url):
    assert httpx.get(f"{stripe_url}/v1/coupons/{DEFAULT_COUPON_ID}", headers=AUTH).json()["percent_off"] == 10
    missing = httpx.get(f"{stripe_url}/v1/coupons/nope", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource_missing"
    created = httpx.post(f"{stripe_url}/v1/coupons", data={"id": "nope", "percent_off": "15"}, headers=AUTH)
    assert created.status_code == 200 and "nope" in stripe_standin.coupons


@pytest.mark.parametrize("mode", ["error_500", "drop_connection"])
def test_faults_before_execution_create_nothing_and_a_retry_succeeds(stripe_standin, stripe_url, mode):
    stripe_standin.add_fault(method="POST", path=r"^/v1/promotion_codes$", mode=mode)
    try:
        assert post(stripe_url, CODE, key="k1").status_code == 500
    except httpx.TransportError:
        assert mode == "drop_connection"
    assert stripe_standin.promotion_codes == {}
    assert post(stripe_url, CODE, key="k1").status_code == 200
    assert len(stripe_standin.promotion_codes) == 1


def test_timeout_after_commit_creates_the_code_and_the_retry_gets_it_back(stripe_standin, stripe_url):
    stripe_standin.add_fault(method="POST", path=r"^/v1/promotion_codes$", mode="timeout_after_commit", delay=2.0)
    with pytest.raises(httpx.TimeoutException):  # 1 s: room for the stand-in to commit first on a busy machine
        httpx.post(
            f"{stripe_url}/v1/promotion_codes", data=CODE, headers={**AUTH, "Idempotency-Key": "k1"}, timeout=1.0
        )
    assert len(stripe_standin.promotion_codes) == 1
    assert post(stripe_url, CODE, key="k1").json()["id"] == next(iter(stripe_standin.promotion_codes))
    assert len(stripe_standin.promotion_codes) == 1


def test_state_lists_coupons_and_codes_over_http(stripe_standin, stripe_url):
    post(stripe_url, CODE, key="k1")
    state = httpx.get(f"{stripe_url}/__sandbox__/state").json()
    assert [c["id"] for c in state["coupons"]] == [DEFAULT_COUPON_ID]
    assert [p["code"] for p in state["promotion_codes"]] == ["LOYALTY1Y1"]


# --- subscriptions ------------------------------------------------------------------------------


def get_subscription(url: str, sub_id: str) -> httpx.Response:
    return httpx.get(f"{url}/v1/subscriptions/{sub_id}", headers=AUTH, timeout=5)


def test_a_subscription_is_read_as_it_is_now(stripe_standin, stripe_url):
    stripe_standin.set_subscription("sub_1", customer="cus_1", metadata={"user_id": "7"}, start_date=1_700_000_000)
    first = get_subscription(stripe_url, "sub_1").json()
    assert (first["object"], first["customer"], first["status"], first["start_date"]) == (
        "subscription",
        "cus_1",
        "active",
        1_700_000_000,
    )
    assert first["items"]["data"][0]["price"]["lookup_key"] == "pro" and first["metadata"] == {"user_id": "7"}

    stripe_standin.set_subscription("sub_1", status="past_due", plan="basic")
    now = get_subscription(stripe_url, "sub_1").json()
    assert (now["status"], now["items"]["data"][0]["price"]["lookup_key"]) == ("past_due", "basic")
    assert get_subscription(stripe_url, "sub_1").status_code == 200  # reads change nothing, need no key


def test_canceled_is_terminal_and_an_unknown_subscription_is_404(stripe_standin, stripe_url):
    stripe_standin.set_subscription("sub_1", customer="cus_1", status="canceled")
    stripe_standin.set_subscription("sub_1", status="active")  # Stripe never revives a canceled subscription
    canceled = get_subscription(stripe_url, "sub_1").json()
    assert canceled["status"] == "canceled" and canceled["canceled_at"] is not None

    stripe_standin.forget_subscription("sub_1")
    missing = get_subscription(stripe_url, "sub_1")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource_missing"
    assert httpx.get(f"{stripe_url}/v1/subscriptions/sub_1", timeout=5).status_code == 401  # needs the key


def test_a_subscription_can_be_set_over_http_for_a_stand_in_in_its_own_process(stripe_standin, stripe_url):
    set_it = httpx.post(
        f"{stripe_url}/__stripe__/subscriptions/sub_9", json={"customer": "cus_9", "status": "unpaid"}, timeout=5
    )
    assert set_it.status_code == 200 and get_subscription(stripe_url, "sub_9").json()["status"] == "unpaid"
    bad = httpx.post(f"{stripe_url}/__stripe__/subscriptions/sub_9", json={"status": "sleeping"}, timeout=5)
    assert bad.status_code == 400
    httpx.post(f"{stripe_url}/__stripe__/subscriptions/sub_9", json={"forget": True}, timeout=5)
    assert get_subscription(stripe_url, "sub_9").status_code == 404
    assert [s["id"] for s in httpx.get(f"{stripe_url}/__sandbox__/state").json()["subscriptions"]] == []
