"""The Stripe client: the official SDK pointed at the stand-in, and how it reports errors."""

import pytest

from loyalty.clients.stripe import StripeClient, StripeRefused, StripeUnavailable
from sandbox.stripe import DEFAULT_COUPON_ID
from tests.concurrency import race

from .conftest import API_KEY

ARGS = {"coupon": DEFAULT_COUPON_ID, "customer": "cus_1", "code": "LOYALTY1Y1", "metadata": {"user_id": "1"}}


@pytest.fixture
def client(stripe_url) -> StripeClient:
    return StripeClient(api_key=API_KEY, api_base=stripe_url, timeout=2.0)


def test_two_concurrent_creates_with_one_key_make_one_code(stripe_standin, client):
    stripe_standin.execution_delay = 0.3  # the first is still executing when the second arrives

    outcomes = race([lambda: client.create_promotion_code(**ARGS, idempotency_key="k1") for _ in range(2)])

    assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
    assert outcomes[0].result == outcomes[1].result
    assert len(stripe_standin.promotion_codes) == 1
    # the loser was told 409 idempotency_key_in_use, and the SDK retried it with the same key
    statuses = sorted(r.status for r in stripe_standin.requests_to("POST", r"^/v1/promotion_codes$"))
    assert 409 in statuses and statuses.count(200) == 2


def test_errors_are_sorted_into_refused_and_unavailable(stripe_standin, client, stripe_url):
    del stripe_standin.coupons[DEFAULT_COUPON_ID]
    with pytest.raises(StripeRefused) as missing:
        client.create_promotion_code(**ARGS, idempotency_key="k1")
    assert (missing.value.status, missing.value.code) == (400, "resource_missing")

    with pytest.raises(StripeRefused) as unauthorised:
        StripeClient(api_key="sk_test_wrong", api_base=stripe_url, timeout=2.0).create_promotion_code(
            **ARGS, idempotency_key="k2"
        )
    assert unauthorised.value.status == 401

    with pytest.raises(StripeUnavailable) as down:
        StripeClient(api_key=API_KEY, api_base="http://127.0.0.1:9", timeout=0.5).create_promotion_code(
            **ARGS, idempotency_key="k3"
        )
    assert down.value.status is None and down.value.code == "connection_error"


def test_idempotency_keys_over_255_characters_never_leave_the_process(stripe_standin, client):
    with pytest.raises(ValueError, match="255"):
        client.create_promotion_code(**ARGS, idempotency_key="k" * 256)
    assert stripe_standin.requests == []


IN_USE = {
    "error": {
        "type": "idempotency_error",
        "code": "idempotency_key_in_use",
        "message": "There is currently another in-progress request using this Idempotency-Key, please retry later.",
    }
}


def test_a_key_still_in_use_after_the_sdk_retries_is_unavailable_not_refused(stripe_standin, client):
    # Stripe kept nothing for the key (docs.stripe.com/api/idempotent_requests): retry later, same key.
    stripe_standin.add_fault(
        method="POST", path=r"^/v1/promotion_codes$", mode="status", status=409, body=IN_USE, times=3
    )

    with pytest.raises(StripeUnavailable) as in_use:
        client.create_promotion_code(**ARGS, idempotency_key="k1")

    assert (in_use.value.status, in_use.value.code, in_use.value.retryable) == (409, "idempotency_key_in_use", True)
    assert len(stripe_standin.requests_to("POST", r"^/v1/promotion_codes$")) == 3  # the SDK retried it twice
    assert stripe_standin.promotion_codes == {}
    assert client.create_promotion_code(**ARGS, idempotency_key="k1").code == "LOYALTY1Y1"
    assert len(stripe_standin.promotion_codes) == 1


def test_a_subscription_is_read_as_stripe_holds_it_and_an_unknown_one_is_none(stripe_standin, client):
    stripe_standin.set_subscription("sub_1", customer="cus_1", status="past_due", metadata={"user_id": "7"})
    found = client.retrieve_subscription("sub_1")
    assert found is not None
    assert (found.id, found.customer, found.status, found.plan, dict(found.metadata)) == (
        "sub_1",
        "cus_1",
        "past_due",
        "pro",
        {"user_id": "7"},
    )
    assert client.retrieve_subscription("sub_unknown") is None


def test_a_subscription_read_stripe_cannot_answer_is_unavailable(stripe_standin, client):
    stripe_standin.set_subscription("sub_1", customer="cus_1")
    stripe_standin.add_fault(method="GET", path=r"^/v1/subscriptions/", mode="error_500", times=3)
    with pytest.raises(StripeUnavailable):
        client.retrieve_subscription("sub_1")
