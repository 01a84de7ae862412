"""The payout services on one connection: balance rule, review decisions, what reaches Wise."""

from decimal import Decimal

import pytest

from affiliates.models import KycStatus
from audit.models import AuditEntry, BeaconCount
from core.errors import BusinessRuleViolation, IllegalTransition, NotFound, PermissionDenied, ValidationError
from ledger.models import Transfer
from payouts.errors import PayoutConflict
from payouts.keys import wise_transaction_id
from payouts.models import Payout, PayoutStatus
from payouts.selectors import available_balance, payouts_for
from payouts.services import (
    approve_payout,
    cancel_payout,
    dispatch_wise_transfer,
    reject_payout,
    request_payout,
    retry_payout,
    set_payout_status,
)
from tests.factories.accounts import SuperAdminFactory, UserFactory
from tests.factories.affiliates import AffiliateFactory, CommissionFactory
from tests.factories.payouts import PayoutFactory, earned_commission, funded_affiliate

pytestmark = pytest.mark.django_db


def _audit(payout: Payout) -> list[tuple[str, str, str]]:
    return list(
        AuditEntry.objects.filter(object_id=str(payout.pk))
        .order_by("id")
        .values_list("source", "target", "actor_label")
    )


# --- requesting a payout ---------------------------------------------------------------------


def test_request_payout_creates_a_requested_payout_within_the_balance():
    # given
    affiliate = funded_affiliate(Decimal("500.00"))
    # when
    payout = request_payout(affiliate=affiliate, amount=Decimal("310.00"), currency="EUR", actor=affiliate.user)
    # then
    assert (payout.status, payout.amount, payout.currency, payout.attempt) == ("requested", Decimal("310.00"), "EUR", 1)
    assert available_balance(affiliate=affiliate, currency="EUR") == Decimal("190.00")


def test_request_beyond_the_balance_is_insufficient_balance_and_writes_nothing():
    affiliate = funded_affiliate(Decimal("300.00"))
    with pytest.raises(BusinessRuleViolation) as caught:
        request_payout(affiliate=affiliate, amount=Decimal("300.01"), currency="EUR", actor=affiliate.user)
    assert caught.value.code == "insufficient_balance"
    assert caught.value.details["available_balance"] == "300.00"
    assert not Payout.objects.exists()


def test_available_balance_is_the_ledger_payable_less_what_payouts_hold_or_paid():
    # given: earned 1,000 EUR and 700 USD in the books; pending and reversed commissions never posted
    affiliate = AffiliateFactory()
    earned_commission(affiliate, Decimal("1000.00"), "EUR")
    earned_commission(affiliate, Decimal("700.00"), "USD")
    CommissionFactory(affiliate=affiliate, amount=Decimal("500.00"), currency="EUR", status="pending")
    CommissionFactory(affiliate=affiliate, amount=Decimal("200.00"), currency="EUR", status="reversed")
    # payouts drawing on that balance (books="unfunded": reserved from it, not self-funded)
    for status, amount in [
        ("requested", "10.00"),
        ("approved", "20.00"),
        ("processing", "30.00"),
        ("paid", "40.00"),
        ("rejected", "900.00"),
        ("failed", "500.00"),
        ("cancelled", "800.00"),
    ]:
        PayoutFactory(affiliate=affiliate, status=status, amount=Decimal(amount), books="unfunded")
    PayoutFactory(amount=Decimal("99.00"))  # another affiliate's

    # then: held (requested/approved/processing) and posted (paid) count, voided ones do not
    assert available_balance(affiliate=affiliate, currency="EUR") == Decimal("900.00")
    assert available_balance(affiliate=affiliate, currency="USD") == Decimal("700.00"), "currencies never offset"
    assert available_balance(affiliate=AffiliateFactory(), currency="EUR") == Decimal("0.00"), "no account yet"
    assert [p.amount for p in payouts_for(affiliate=affiliate)][:2] == [Decimal("800.00"), Decimal("500.00")]
    assert payouts_for(affiliate=affiliate).count() == 7


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        ("0", "EUR", "invalid_amount"),
        ("-5", "EUR", "invalid_amount"),
        ("1.001", "EUR", "invalid_amount"),
        ("abc", "EUR", "invalid_amount"),
        ("NaN", "EUR", "invalid_amount"),
        ("10", "eur", "invalid_currency"),
        ("10", "EURO", "invalid_currency"),
        ("10", "", "invalid_currency"),
    ],
)
def test_bad_amount_or_currency_is_a_validation_error(amount, currency, code):
    affiliate = funded_affiliate()
    with pytest.raises(ValidationError) as caught:
        request_payout(affiliate=affiliate, amount=amount, currency=currency, actor=affiliate.user)
    assert caught.value.code == code
    assert not Payout.objects.exists()


def test_an_affiliate_cannot_request_for_another():
    affiliate = funded_affiliate()
    with pytest.raises(PermissionDenied):
        request_payout(affiliate=affiliate, amount=Decimal("1.00"), currency="EUR", actor=UserFactory())


# --- review ----------------------------------------------------------------------------------


def test_approve_dispatches_exactly_one_funded_transfer_at_wise(wise, django_capture_on_commit_callbacks):
    # given
    admin = SuperAdminFactory(username="kerem")
    payout = PayoutFactory()
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        approve_payout(payout_id=payout.pk, actor=admin, reason="ok")
    # then
    assert len(callbacks) == 1
    payout.refresh_from_db()
    assert payout.status == "processing"
    assert (payout.reviewed_by, payout.reason) == (admin, "ok")
    transfers = wise.transfers_for(wise_transaction_id(payout_id=payout.pk, attempt=1))
    assert len(transfers) == 1 and str(transfers[0]["id"]) == payout.wise_transfer_id
    assert transfers[0]["targetAccount"] == payout.affiliate.wise_recipient_id
    assert [f["transferId"] for f in wise.fundings] == [transfers[0]["id"]]
    assert payout.wise_funded_at is not None and payout.wise_quote_id == transfers[0]["quoteUuid"]
    assert _audit(payout) == [
        ("requested", "approved", "kerem"),
        ("approved", "processing", "system:task:dispatch_wise_transfer"),
    ]


def test_reject_never_reaches_wise(wise, django_capture_on_commit_callbacks):
    payout = PayoutFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        reject_payout(payout_id=payout.pk, actor=SuperAdminFactory(), reason="duplicate")
    assert callbacks == []
    payout.refresh_from_db()
    assert (payout.status, payout.reason) == ("rejected", "duplicate")
    assert wise.requests == []


def test_approve_without_verified_kyc_is_kyc_not_verified_and_changes_nothing(wise, django_capture_on_commit_callbacks):
    payout = PayoutFactory(affiliate=AffiliateFactory(kyc_status=KycStatus.PENDING))
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(IllegalTransition) as caught:
        approve_payout(payout_id=payout.pk, actor=SuperAdminFactory())
    assert callbacks == []
    assert caught.value.code == "kyc_not_verified"
    assert caught.value.details["from"] == "requested" and caught.value.details["to"] == "approved"
    payout.refresh_from_db()
    assert payout.status == "requested" and payout.reviewed_by is None
    assert not AuditEntry.objects.exists() and wise.requests == []
    assert BeaconCount.objects.get(kind="payout_transition_refused").count == 1


def test_approving_a_rejected_payout_is_a_conflict_naming_the_reviewer(wise, django_capture_on_commit_callbacks):
    ana, kerem = SuperAdminFactory(username="ana"), SuperAdminFactory(username="kerem")
    payout = PayoutFactory()
    reject_payout(payout_id=payout.pk, actor=kerem, reason="duplicate request")

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(PayoutConflict) as caught:
        approve_payout(payout_id=payout.pk, actor=ana)

    assert callbacks == []
    body = caught.value.as_dict()
    assert body["error"] == "conflict"
    assert (body["current_status"], body["current_reviewer"]) == ("rejected", "kerem")
    assert body["reviewed_at"] is not None
    assert wise.requests == []
    assert _audit(payout) == [("requested", "rejected", "kerem")]


def test_a_user_without_the_review_permission_is_refused():
    payout = PayoutFactory()
    staff = UserFactory(is_staff=True)
    with pytest.raises(PermissionDenied):
        approve_payout(payout_id=payout.pk, actor=staff)
    payout.refresh_from_db()
    assert payout.status == "requested" and not AuditEntry.objects.exists()


def test_unknown_payout_is_not_found():
    with pytest.raises(NotFound):
        approve_payout(payout_id=987654, actor=SuperAdminFactory())


def test_cancel_before_dispatch_stops_the_transfer(wise):
    # given: approved, but the on-commit dispatch has not run yet
    payout = PayoutFactory(status=PayoutStatus.APPROVED)
    # when
    cancel_payout(payout_id=payout.pk, actor=SuperAdminFactory())
    outcome = dispatch_wise_transfer(payout_id=payout.pk)
    # then
    assert outcome == "not_dispatchable"
    payout.refresh_from_db()
    assert payout.status == "cancelled"
    assert wise.requests == []


def test_cancel_after_the_dispatch_claimed_it_is_a_conflict(wise, django_capture_on_commit_callbacks):
    payout = PayoutFactory()
    with django_capture_on_commit_callbacks(execute=True):
        approve_payout(payout_id=payout.pk, actor=SuperAdminFactory(username="kerem"))  # dispatched: processing
    with pytest.raises(PayoutConflict) as caught:
        cancel_payout(payout_id=payout.pk, actor=SuperAdminFactory(username="ana"))
    details = caught.value.details
    assert (details["current_status"], details["current_actor"]) == ("processing", "system:task:dispatch_wise_transfer")
    # the reviewer is told who decided, not which job ran after them
    assert (details["current_reviewer"], details["decided_status"]) == ("kerem", "approved")


def test_retry_after_failure_opens_a_new_attempt_with_a_new_transaction_id(wise, django_capture_on_commit_callbacks):
    admin = SuperAdminFactory()
    # funds_refunded: a FINAL failure (Wise's lifecycle: bounced_back -> ... -> cancelled -> funds_refunded)
    payout = PayoutFactory(status=PayoutStatus.FAILED, wise_transfer_id="1", wise_state="funds_refunded", attempt=1)

    retry_payout(payout_id=payout.pk, actor=admin, reason="bank fixed")
    payout.refresh_from_db()
    assert (payout.status, payout.attempt, payout.wise_transfer_id) == ("requested", 2, "")

    with django_capture_on_commit_callbacks(execute=True):
        approve_payout(payout_id=payout.pk, actor=admin)
    payout.refresh_from_db()
    assert payout.status == "processing"
    assert wise.transfers_for(wise_transaction_id(payout_id=payout.pk, attempt=1)) == []
    assert len(wise.transfers_for(wise_transaction_id(payout_id=payout.pk, attempt=2))) == 1


@pytest.mark.parametrize("state", ["funds_converted", "bounced_back"])  # bounced_back is not final at Wise
def test_retry_is_refused_while_the_attempt_transfer_is_not_reported_failed(state):
    payout = PayoutFactory(status=PayoutStatus.FAILED, wise_transfer_id="77", wise_state=state)
    with pytest.raises(IllegalTransition) as caught:
        retry_payout(payout_id=payout.pk, actor=SuperAdminFactory())
    assert caught.value.code == "wise_transfer_not_settled"
    payout.refresh_from_db()
    assert payout.status == "failed" and payout.attempt == 1


def test_cancelled_payout_reopens_for_review_as_a_new_attempt_with_a_new_reservation():
    payout = PayoutFactory(status=PayoutStatus.CANCELLED)
    retry_payout(payout_id=payout.pk, actor=SuperAdminFactory())
    payout.refresh_from_db()
    # a new attempt: the cancelled attempt's reservation stays voided, the new one holds the amount
    assert (payout.status, payout.attempt) == ("requested", 2)
    assert Transfer.objects.filter(pk=f"payout:{payout.pk}:attempt:1:reserve:void").exists()
    assert Transfer.objects.filter(pk=f"payout:{payout.pk}:attempt:2:reserve", resolution__isnull=True).exists()
    assert _audit(payout)[0][:2] == ("cancelled", "requested")


def test_set_status_from_a_stale_expected_status_is_a_conflict():
    payout = PayoutFactory()
    reject_payout(payout_id=payout.pk, actor=SuperAdminFactory(username="kerem"), reason="duplicate request")
    with pytest.raises(PayoutConflict):
        set_payout_status(
            payout_id=payout.pk, status="approved", expected_status="requested", actor=SuperAdminFactory()
        )


def test_set_status_illegal_from_the_seen_state_lists_the_allowed_targets():
    payout = PayoutFactory(status=PayoutStatus.REJECTED)
    with pytest.raises(IllegalTransition) as caught:
        set_payout_status(payout_id=payout.pk, status="approved", expected_status="rejected", actor=SuperAdminFactory())
    assert caught.value.details == {"from": "rejected", "to": "approved", "allowed": []}
