"""A reject needs a reason, and the rule lives in ONE place: payouts.services.review (through
payouts.reasons.clean_decision_reason), which every door calls. Without a reason (missing, empty or
blank) the API answers 400 reason_required with a JSON body, the service raises the project's
ValidationError, the admin shows the same words; and nothing is written: the payout row, its audit
trail and the books are as they were. With a reason the reject goes through."""

from decimal import Decimal

import pytest
from django.forms.models import model_to_dict
from django.test import Client

from audit.models import AuditEntry
from core.errors import ValidationError
from ledger.models import Account, Transfer, TransferFlag
from payouts.errors import PayoutErrorCode
from payouts.models import Payout, PayoutStatus
from payouts.services import approve_payout, reject_payout, request_payout, review_payout, set_payout_status
from tests.factories.accounts import SuperAdminFactory
from tests.factories.payouts import funded_affiliate
from tests.payouts.admin_pages import change_url, messages_of, signed_in
from tests.payouts.helpers import api_json

pytestmark = pytest.mark.django_db

REQUIRED = "A reason is required to reject: enter it in the reason field."
BLANK_REASONS = [
    pytest.param("", id="empty"),
    pytest.param(" ", id="space"),
    pytest.param(" \r\n\t ", id="whitespace-and-line-breaks"),
    pytest.param("\u00a0\u2003", id="unicode-spaces"),
]


@pytest.fixture
def payout() -> Payout:
    """A requested payout made by the service, so its reservation is really in the books."""
    affiliate = funded_affiliate(Decimal("500.00"))
    return request_payout(affiliate=affiliate, amount=Decimal("120.00"), currency="EUR", actor=affiliate.user)


@pytest.fixture
def kerem() -> Client:
    return signed_in(SuperAdminFactory(username="kerem"))


def _state(payout: Payout) -> dict:
    """Everything a reject would change: the payout row, the audit trail and the books."""
    return {
        "payout": model_to_dict(Payout.objects.get(pk=payout.pk)),
        "audit": list(AuditEntry.objects.order_by("id").values_list("id", flat=True)),
        "transfers": list(Transfer.objects.order_by("id").values()),
        "accounts": list(Account.objects.order_by("id").values()),
    }


def _assert_refused_body(response) -> None:
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert api_json(response) == {"error": PayoutErrorCode.REASON_REQUIRED, "detail": REQUIRED, "transition": "reject"}


# --- the API ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [{}, {"reason": ""}], ids=["no-reason-field", "empty-reason"])
def test_api_reject_without_a_reason_is_400_and_writes_nothing(payout, kerem, wise, body):
    before = _state(payout)

    response = kerem.post(f"/api/payouts/{payout.pk}/reject/", body, "application/json")

    _assert_refused_body(response)
    assert _state(payout) == before
    assert Payout.objects.get(pk=payout.pk).status == PayoutStatus.REQUESTED
    assert not AuditEntry.objects.filter(object_id=str(payout.pk)).exists()
    assert wise.requests == []


@pytest.mark.parametrize("reason", BLANK_REASONS)
def test_api_reject_with_a_blank_reason_is_refused_by_the_action_and_by_put(payout, kerem, reason):
    before = _state(payout)

    action = kerem.post(f"/api/payouts/{payout.pk}/reject/", {"reason": reason}, "application/json")
    put_body = {"status": "rejected", "expected_status": "requested", "reason": reason}
    put = kerem.put(f"/api/payouts/{payout.pk}/", put_body, "application/json")
    put_without = kerem.put(
        f"/api/payouts/{payout.pk}/", {"status": "rejected", "expected_status": "requested"}, "application/json"
    )

    for response in (action, put, put_without):
        _assert_refused_body(response)
    assert _state(payout) == before


def test_api_reject_with_a_reason_succeeds_and_voids_the_reservation(payout, kerem, wise):
    reservation = f"payout:{payout.pk}:attempt:1:reserve"
    assert Transfer.objects.filter(pk=reservation, resolution__isnull=True).exists()

    reason = "  Invoice in_7 was refunded \r\n"
    response = kerem.post(f"/api/payouts/{payout.pk}/reject/", {"reason": reason}, "application/json")

    assert response.status_code == 200, response.content
    body = api_json(response)
    assert (body["status"], body["reason"], body["reviewed_by"]) == ("rejected", "Invoice in_7 was refunded", "kerem")
    trail = list(AuditEntry.objects.filter(object_id=str(payout.pk)).values_list("source", "target", "reason"))
    assert trail[-1] == ("requested", "rejected", "Invoice in_7 was refunded")
    assert Transfer.objects.get(pending_id=reservation).flag == TransferFlag.VOID_PENDING  # the hold is released
    assert wise.requests == []


def test_the_schema_documents_the_reason_as_required_for_reject_only(kerem):
    schema = kerem.get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]
    reject_ref = schema["paths"]["/api/payouts/{payout_id}/reject/"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["$ref"]
    approve_ref = schema["paths"]["/api/payouts/{payout_id}/approve/"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["$ref"]
    reject_input, approve_input = (components[ref.rsplit("/", 1)[1]] for ref in (reject_ref, approve_ref))
    assert reject_input.get("required") == ["reason"]
    assert "required" not in approve_input


# --- the service -----------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", BLANK_REASONS)
def test_the_service_refuses_a_reject_without_a_reason_before_writing_anything(payout, reason):
    kerem = SuperAdminFactory(username="kerem")
    before = _state(payout)
    calls = [
        lambda: reject_payout(payout_id=payout.pk, actor=kerem, reason=reason),
        lambda: review_payout(payout_id=payout.pk, transition="reject", actor=kerem, reason=reason),
        lambda: set_payout_status(
            payout_id=payout.pk, status="rejected", expected_status="requested", actor=kerem, reason=reason
        ),
    ]
    for call in calls:
        with pytest.raises(ValidationError) as refused:
            call()
        assert (refused.value.code, refused.value.message) == (PayoutErrorCode.REASON_REQUIRED, REQUIRED)
        assert refused.value.status_code == 400
    assert _state(payout) == before


def test_the_service_rejects_with_a_reason():
    affiliate = funded_affiliate(Decimal("500.00"))
    payout = request_payout(affiliate=affiliate, amount=Decimal("120.00"), currency="EUR", actor=affiliate.user)
    done = reject_payout(payout_id=payout.pk, actor=SuperAdminFactory(username="kerem"), reason=" duplicate ")
    assert (done.status, done.reason) == (PayoutStatus.REJECTED, "duplicate")


def test_only_a_reject_needs_a_reason(payout):
    """The rule is the reject's: an approval with no reason still goes through."""
    done = approve_payout(payout_id=payout.pk, actor=SuperAdminFactory(username="kerem"), reason="  ")
    assert (done.status, done.reason) == (PayoutStatus.APPROVED, "")


# --- the admin: the same rule, the same words ----------------------------------------------------


def test_the_admin_page_shows_the_services_words_and_writes_nothing(payout, kerem, wise):
    before = _state(payout)
    api = kerem.post(f"/api/payouts/{payout.pk}/reject/", {"reason": "  "}, "application/json")

    page = kerem.post(
        change_url(payout), {"_transition": "reject", "_seen_status": "requested", "_reason": "  "}, follow=True
    )

    assert messages_of(page) == [f"#{payout.pk}: {api_json(api)['detail']}"]
    assert _state(payout) == before
