"""The payouts HTTP API through django.test.Client: status codes, bodies, and that errors write nothing."""

import itertools
from decimal import Decimal

import pytest
from django.forms.models import model_to_dict
from django.test import Client
from rest_framework.authtoken.models import Token

from affiliates.models import KycStatus
from audit.models import AuditEntry
from payouts.models import Payout, PayoutStatus
from tests.factories.accounts import SuperAdminFactory, UserFactory
from tests.factories.affiliates import AffiliateFactory
from tests.factories.payouts import PayoutFactory, funded_affiliate
from tests.payouts.helpers import api_json

pytestmark = pytest.mark.django_db
STATUSES = list(PayoutStatus.values)
LEGAL = {
    ("requested", "approved"),
    ("requested", "rejected"),
    ("approved", "processing"),
    ("approved", "cancelled"),
    ("processing", "paid"),
    ("processing", "failed"),
    ("failed", "requested"),
    ("cancelled", "requested"),
}
# Declared, but only Wise's own report applies it (a success after a final failure): a person's PUT
# is refused with 403 and writes nothing.
WISE_ONLY = {("failed", "paid")}
PAYOUT_KEYS = {
    "id",
    "affiliate",
    "amount",
    "currency",
    "status",
    "reason",
    "requested_by",
    "reviewed_by",
    "reviewed_at",
    "approvals_required",
    "approvals",
    "attempt",
    "wise_transfer_id",
    "allowed_transitions",
}


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(SuperAdminFactory(username="kerem"))
    return client


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _snapshot(payout: Payout) -> dict:
    return model_to_dict(Payout.objects.get(pk=payout.pk))


# --- POST /api/payouts/ --------------------------------------------------------------------------


def test_affiliate_requests_a_payout_for_itself():
    affiliate = funded_affiliate(Decimal("400.00"))
    response = _as(affiliate.user).post("/api/payouts/", {"amount": "310.00", "currency": "EUR"}, "application/json")
    assert response.status_code == 201, response.content
    body = api_json(response)
    assert set(body) == PAYOUT_KEYS
    assert (body["status"], body["amount"], body["currency"], body["affiliate"]) == (
        "requested",
        "310.00",
        "EUR",
        affiliate.pk,
    )
    assert body["reviewed_by"] is None and body["allowed_transitions"] == []


def test_request_over_the_balance_is_422_insufficient_balance():
    affiliate = funded_affiliate(Decimal("300.00"))
    response = _as(affiliate.user).post("/api/payouts/", {"amount": "310.00", "currency": "EUR"}, "application/json")
    assert response.status_code == 422
    assert api_json(response)["error"] == "insufficient_balance"
    assert not Payout.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"amount": "abc", "currency": "EUR"},
        {"amount": "10.00", "currency": "euro"},
        {"amount": "-1", "currency": "EUR"},
    ],
)
def test_malformed_request_is_400(body):
    affiliate = funded_affiliate()
    response = _as(affiliate.user).post("/api/payouts/", body, "application/json")
    assert response.status_code == 400
    assert api_json(response)["error"] in ("validation_error", "invalid_amount")
    assert not Payout.objects.exists()


def test_non_affiliate_cannot_request_and_anonymous_is_401():
    assert _as(UserFactory()).post("/api/payouts/", {"amount": "1.00", "currency": "EUR"}).status_code == 403
    response = Client().post("/api/payouts/", {"amount": "1.00", "currency": "EUR"})
    assert response.status_code == 401
    assert api_json(response)["error"] == "not_authenticated"


def test_token_authentication_works():
    affiliate = funded_affiliate()
    token = Token.objects.create(user=affiliate.user)
    response = Client().get("/api/payouts/", headers={"Authorization": f"Token {token.key}"})
    assert response.status_code == 200


# --- GET -------------------------------------------------------------------------------------------


def test_super_admin_lists_all_filtered_by_status_and_affiliate_only_its_own(admin_client):
    mine = AffiliateFactory()
    own = PayoutFactory(affiliate=mine)
    PayoutFactory(affiliate=mine, status=PayoutStatus.PAID)
    other = PayoutFactory()

    all_requested = api_json(admin_client.get("/api/payouts/?status=requested"))
    assert {p["id"] for p in all_requested["results"]} == {own.pk, other.pk}
    assert all_requested["results"][0]["allowed_transitions"] == ["approved", "rejected"]

    as_affiliate = _as(mine.user)
    assert {p["id"] for p in api_json(as_affiliate.get("/api/payouts/"))["results"]} == {own.pk, own.pk + 1}
    assert as_affiliate.get(f"/api/payouts/{own.pk}/").status_code == 200
    assert as_affiliate.get(f"/api/payouts/{other.pk}/").status_code == 404
    assert admin_client.get("/api/payouts/?status=limbo").status_code == 400


def test_unknown_id_is_404(admin_client):
    assert admin_client.get("/api/payouts/999999/").status_code == 404
    response = admin_client.post("/api/payouts/999999/approve/", {}, "application/json")
    assert response.status_code == 404 and api_json(response)["error"] == "not_found"
    put = {"status": "approved", "expected_status": "requested"}
    assert admin_client.put("/api/payouts/999999/", put, "application/json").status_code == 404


# --- review actions ------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["approve", "reject", "cancel", "retry"])
def test_review_actions_are_super_admin_only(action):
    payout = PayoutFactory()
    before = _snapshot(payout)
    staff = UserFactory(is_staff=True)
    assert _as(staff).post(f"/api/payouts/{payout.pk}/{action}/").status_code == 403
    assert _as(payout.affiliate.user).post(f"/api/payouts/{payout.pk}/{action}/").status_code == 403
    assert Client().post(f"/api/payouts/{payout.pk}/{action}/").status_code == 401
    put = {"status": "approved", "expected_status": "requested"}
    assert _as(staff).put(f"/api/payouts/{payout.pk}/", put, "application/json").status_code == 403
    assert Client().put(f"/api/payouts/{payout.pk}/", put, "application/json").status_code == 401
    assert _snapshot(payout) == before and not AuditEntry.objects.exists()


def test_approve_returns_the_payout_and_dispatches_once(admin_client, wise, django_capture_on_commit_callbacks):
    payout = PayoutFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(f"/api/payouts/{payout.pk}/approve/", {"reason": "fine"}, "application/json")
    assert response.status_code == 200, response.content
    body = api_json(response)
    assert (body["status"], body["reviewed_by"], body["reason"]) == ("approved", "kerem", "fine")
    assert len(callbacks) == 1 and len(wise.transfers) == 1 and len(wise.fundings) == 1
    assert api_json(admin_client.get(f"/api/payouts/{payout.pk}/"))["status"] == "processing"


def test_lost_race_is_409_with_current_status_reviewer_and_time(admin_client, wise, django_capture_on_commit_callbacks):
    payout = PayoutFactory()
    rejected = _as(SuperAdminFactory(username="ana")).post(
        f"/api/payouts/{payout.pk}/reject/", {"reason": "duplicate request"}, "application/json"
    )
    assert rejected.status_code == 200, rejected.content
    before = _snapshot(payout)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(f"/api/payouts/{payout.pk}/approve/")

    assert response.status_code == 409
    body = api_json(response)
    assert body["error"] == "conflict"
    assert (body["current_status"], body["current_reviewer"]) == ("rejected", "ana")
    assert body["reviewed_at"]
    assert _snapshot(payout) == before and callbacks == [] and wise.requests == []


def test_kyc_not_verified_is_422(admin_client):
    payout = PayoutFactory(affiliate=AffiliateFactory(kyc_status=KycStatus.REJECTED))
    response = admin_client.post(f"/api/payouts/{payout.pk}/approve/")
    assert response.status_code == 422
    body = api_json(response)
    assert (body["error"], body["from"], body["to"]) == ("kyc_not_verified", "requested", "approved")


def test_retry_moves_failed_back_to_requested_with_a_new_attempt(admin_client):
    payout = PayoutFactory(status=PayoutStatus.FAILED)
    body = api_json(admin_client.post(f"/api/payouts/{payout.pk}/retry/", {"reason": "again"}, "application/json"))
    assert (body["status"], body["attempt"], body["reason"]) == ("requested", 2, "again")


@pytest.mark.parametrize(
    "body",
    [
        {"status": "limbo", "expected_status": "requested"},
        {"status": "approved", "expected_status": "limbo"},
        {"status": "approved"},
        {"expected_status": "requested"},
        "not json at all",
    ],
)
def test_put_with_unknown_status_or_malformed_body_is_400_and_writes_nothing(admin_client, body):
    payout = PayoutFactory()
    before = _snapshot(payout)
    response = admin_client.put(f"/api/payouts/{payout.pk}/", body, "application/json")
    assert response.status_code == 400
    assert api_json(response)["error"] == "validation_error"
    assert _snapshot(payout) == before and not AuditEntry.objects.exists()


@pytest.mark.parametrize(("source", "target"), list(itertools.product(STATUSES, STATUSES)))
def test_the_7x7_matrix_through_put(admin_client, wise, django_capture_on_commit_callbacks, source, target):
    # given: a payout in `source`, which is what the reviewer saw
    payout = PayoutFactory(status=source)
    before = _snapshot(payout)
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.put(
            f"/api/payouts/{payout.pk}/",
            {"status": target, "expected_status": source, "reason": "matrix"},
            "application/json",
        )
    # then
    body = api_json(response)
    if (source, target) in LEGAL:
        assert response.status_code == 200, body
        assert body["status"] == target
        audit = list(AuditEntry.objects.filter(object_id=str(payout.pk)).values_list("source", "target"))
        assert audit[0] == (source, target)
        dispatched = target in ("approved", "processing")  # a won approve, or a manual start, dispatches
        assert len(callbacks) == int(dispatched)
        assert len(wise.fundings) == int(dispatched)
    elif (source, target) in WISE_ONLY:
        assert (response.status_code, body["error"]) == (403, "permission_denied"), body
        assert _snapshot(payout) == before
        assert not AuditEntry.objects.exists() and callbacks == [] and wise.requests == []
    else:
        assert response.status_code == 422, body
        assert (body["error"], body["from"], body["to"]) == ("illegal_transition", source, target)
        assert body["allowed"] == sorted(t for s, t in LEGAL | WISE_ONLY if s == source)
        assert _snapshot(payout) == before
        assert not AuditEntry.objects.exists() and callbacks == [] and wise.requests == []


def test_schema_documents_the_error_responses(admin_client):
    schema = admin_client.get("/api/schema/?format=json").json()
    approve = schema["paths"]["/api/payouts/{payout_id}/approve/"]["post"]["responses"]
    assert {"200", "400", "401", "403", "404", "409", "422"} <= set(approve)
    put = schema["paths"]["/api/payouts/{payout_id}/"]["put"]["responses"]
    assert {"200", "409", "422"} <= set(put)
    assert "/api/wise/webhook/" in schema["paths"]
