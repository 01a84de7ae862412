"""Issue 13's payout scenarios, each of which moved money wrongly before the books: the balance is
the ledger's, every request / retry / re-open is a reservation refused by the ledger's guarded
UPDATE, and approval re-checks the account inside its transaction."""

from decimal import Decimal

import pytest
from django.contrib.admin import helpers
from django.test import Client
from django.utils import timezone

from core.errors import BusinessRuleViolation, Conflict, ValidationError
from ledger.models import Account, AccountKind, Transfer, TransferFlag
from payouts.models import Payout, PayoutStatus
from payouts.selectors import available_balance
from payouts.services import (
    approve_payout,
    cancel_payout,
    record_wise_state,
    reject_payout,
    request_payout,
    retry_payout,
)
from payouts.services.books import reservation_id, void_payout_reservation
from tests.factories.accounts import SuperAdminFactory
from tests.factories.affiliates import AffiliateFactory
from tests.factories.payouts import PayoutFactory, earned_commission, funded_affiliate, post_reversed
from tests.payouts.helpers import api_json

pytestmark = pytest.mark.django_db
HUNDRED = Decimal("100.00")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _payable(affiliate, currency: str = "EUR") -> Account:
    return Account.objects.get(kind=AccountKind.AFFILIATE_PAYABLE, owner_id=str(affiliate.pk), currency=currency)


def _held_or_paid(affiliate) -> int:
    """Minor units ever taken from the affiliate by payouts and not released: holds + posted."""
    account = _payable(affiliate)
    paid = Transfer.objects.filter(debit_account=account, flag=TransferFlag.POST_PENDING).values_list(
        "amount", flat=True
    )
    return account.debits_pending + sum(paid)


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- (a) fail at Wise, request the freed money again, retry the failed one ----------------------


def test_a_retry_after_the_freed_money_was_requested_again_is_refused(wise, django_capture_on_commit_callbacks):
    # given: 100 earned; a payout of 100 requested, approved, sent to Wise, and cancelled there
    affiliate, admin = funded_affiliate(HUNDRED), SuperAdminFactory(username="kerem")
    failed = request_payout(affiliate=affiliate, amount=HUNDRED, currency="EUR", actor=affiliate.user)
    with django_capture_on_commit_callbacks(execute=True):
        approve_payout(payout_id=failed.pk, actor=admin)
    failed.refresh_from_db()
    record_wise_state(transfer_id=failed.wise_transfer_id, state="cancelled", occurred_at=timezone.now())
    failed.refresh_from_db()
    assert failed.status == PayoutStatus.FAILED
    # A final failure releases the attempt's hold (the Wise lifecycle voids it; a void is replay-safe).
    void_payout_reservation(failed)
    assert available_balance(affiliate=affiliate, currency="EUR") == HUNDRED

    # when: the affiliate requests the freed 100 again, then an admin retries the failed one
    again = request_payout(affiliate=affiliate, amount=HUNDRED, currency="EUR", actor=affiliate.user)
    with pytest.raises(BusinessRuleViolation) as caught:
        retry_payout(payout_id=failed.pk, actor=admin, reason="bank fixed")
    response = _client(admin).post(f"/api/payouts/{failed.pk}/retry/", {}, "application/json")

    # then: refused in the service and the API, the failed payout untouched, at most 100 ever held
    assert caught.value.code == "insufficient_balance" and caught.value.details["available_balance"] == "0.00"
    assert response.status_code == 422, response.content
    assert api_json(response)["error"] == "insufficient_balance" and api_json(response)["available_balance"] == "0.00"
    failed.refresh_from_db()
    assert (failed.status, failed.attempt) == (PayoutStatus.FAILED, 1)
    assert not Transfer.objects.filter(pk=reservation_id(payout_id=failed.pk, attempt=2)).exists()
    with django_capture_on_commit_callbacks(execute=True):
        approve_payout(payout_id=again.pk, actor=admin)
    assert _held_or_paid(affiliate) == 100_00
    assert available_balance(affiliate=affiliate, currency="EUR") == Decimal("0.00")


def test_a_retry_is_a_new_reservation_that_succeeds_while_the_balance_covers_it():
    affiliate, admin = funded_affiliate(HUNDRED), SuperAdminFactory()
    payout = PayoutFactory(affiliate=affiliate, amount=HUNDRED, status=PayoutStatus.FAILED, books="unfunded")

    retry_payout(payout_id=payout.pk, actor=admin)

    payout.refresh_from_db()
    assert (payout.status, payout.attempt) == (PayoutStatus.REQUESTED, 2)
    attempt_two = Transfer.objects.get(pk=reservation_id(payout_id=payout.pk, attempt=2))
    assert (attempt_two.flag, attempt_two.amount) == (TransferFlag.PENDING, 100_00)
    assert available_balance(affiliate=affiliate, currency="EUR") == Decimal("0.00")


def test_a_retry_releases_a_hold_its_failed_attempt_still_had_so_the_amount_is_held_once():
    affiliate, admin = funded_affiliate(HUNDRED), SuperAdminFactory()
    payout = request_payout(affiliate=affiliate, amount=HUNDRED, currency="EUR", actor=affiliate.user)
    Payout.objects.filter(pk=payout.pk).update(status=PayoutStatus.FAILED)  # failed, its hold not yet voided

    retry_payout(payout_id=payout.pk, actor=admin)

    assert Transfer.objects.filter(pk=f"{reservation_id(payout_id=payout.pk, attempt=1)}:void").exists()
    assert _payable(affiliate).debits_pending == 100_00
    assert available_balance(affiliate=affiliate, currency="EUR") == Decimal("0.00")


def test_a_retry_of_an_attempt_whose_money_went_out_is_refused():
    affiliate, admin = funded_affiliate(HUNDRED), SuperAdminFactory()
    payout = PayoutFactory(affiliate=affiliate, amount=HUNDRED, status=PayoutStatus.PAID, books="unfunded")
    Payout.objects.filter(pk=payout.pk).update(status=PayoutStatus.FAILED)  # a failure reported after the post

    with pytest.raises(Conflict):
        retry_payout(payout_id=payout.pk, actor=admin)

    payout.refresh_from_db()
    assert (payout.status, payout.attempt) == (PayoutStatus.FAILED, 1)
    assert not Transfer.objects.filter(pk=reservation_id(payout_id=payout.pk, attempt=2)).exists()


def test_reopening_a_cancelled_payout_is_refused_once_its_money_was_requested_again():
    affiliate, admin = funded_affiliate(HUNDRED), SuperAdminFactory()
    payout = request_payout(affiliate=affiliate, amount=HUNDRED, currency="EUR", actor=affiliate.user)
    Payout.objects.filter(pk=payout.pk).update(status=PayoutStatus.APPROVED)  # approved, dispatch not yet run
    cancel_payout(payout_id=payout.pk, actor=admin)
    request_payout(affiliate=affiliate, amount=HUNDRED, currency="EUR", actor=affiliate.user)

    with pytest.raises(BusinessRuleViolation) as caught:
        retry_payout(payout_id=payout.pk, actor=admin)  # cancelled -> requested: "reopen"

    assert caught.value.code == "insufficient_balance"
    payout.refresh_from_db()
    assert (payout.status, payout.attempt) == (PayoutStatus.CANCELLED, 1)
    assert _held_or_paid(affiliate) == 100_00


def test_reject_and_cancel_release_the_hold():
    affiliate, admin = funded_affiliate(Decimal("300.00")), SuperAdminFactory()
    rejected = request_payout(affiliate=affiliate, amount=HUNDRED, currency="EUR", actor=affiliate.user)
    cancelled = request_payout(affiliate=affiliate, amount=HUNDRED, currency="EUR", actor=affiliate.user)
    Payout.objects.filter(pk=cancelled.pk).update(status=PayoutStatus.APPROVED)
    assert available_balance(affiliate=affiliate, currency="EUR") == HUNDRED

    reject_payout(payout_id=rejected.pk, actor=admin, reason="duplicate request")
    cancel_payout(payout_id=cancelled.pk, actor=admin)

    assert available_balance(affiliate=affiliate, currency="EUR") == Decimal("300.00")
    voids = Transfer.objects.filter(flag=TransferFlag.VOID_PENDING).values_list("pk", flat=True)
    assert sorted(voids) == sorted(f"{reservation_id(payout_id=p.pk, attempt=1)}:void" for p in (rejected, cancelled))


# --- (b) the commission behind a requested payout is reversed, then approve ---------------------


def _reversed_after_request() -> Payout:
    """100 earned, a payout of 100 requested, then the commission behind it refunded in full."""
    affiliate = AffiliateFactory()
    commission = earned_commission(affiliate, HUNDRED, "EUR")
    payout = request_payout(affiliate=affiliate, amount=HUNDRED, currency="EUR", actor=affiliate.user)
    post_reversed(commission, HUNDRED)
    return payout


def _assert_still_requested(payout: Payout) -> None:
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.REQUESTED and payout.reviewed_by is None
    assert _payable(payout.affiliate).debits_posted == 100_00  # only the reversal: nothing paid
    assert available_balance(affiliate=payout.affiliate, currency="EUR") == Decimal("-100.00")  # still held


def test_approving_after_a_reversal_is_refused_in_the_service_and_the_api(wise):
    payout, other = _reversed_after_request(), _reversed_after_request()
    admin = SuperAdminFactory(username="kerem")

    with pytest.raises(BusinessRuleViolation) as caught:
        approve_payout(payout_id=payout.pk, actor=admin)
    response = _client(admin).post(f"/api/payouts/{other.pk}/approve/", {}, "application/json")

    assert caught.value.code == "insufficient_balance" and caught.value.details["available_balance"] == "-100.00"
    assert response.status_code == 422, response.content
    body = api_json(response)
    assert (body["error"], body["available_balance"]) == ("insufficient_balance", "-100.00")
    _assert_still_requested(payout)
    _assert_still_requested(other)
    assert wise.requests == []


def test_approving_after_a_reversal_is_refused_on_the_admin_page(wise):
    payout = _reversed_after_request()
    kerem = _client(SuperAdminFactory(username="kerem"))
    page = kerem.get(f"/admin/payouts/payout/{payout.pk}/change/")
    assert 'id="balance-available">-€100.00<' in page.content.decode()  # the affiliate's balance, from the books

    response = kerem.post(
        f"/admin/payouts/payout/{payout.pk}/change/",
        {"_transition": "approve", "_seen_status": "requested"},
        follow=True,
    )

    [line] = _messages(response)
    assert line.startswith(f"#{payout.pk}: Insufficient balance") and "-100.00 EUR" in line
    _assert_still_requested(payout)
    assert wise.requests == []


def test_approving_after_a_reversal_is_refused_per_row_in_the_bulk_action(wise, django_capture_on_commit_callbacks):
    refused, covered = _reversed_after_request(), PayoutFactory(amount=HUNDRED)
    kerem = _client(SuperAdminFactory(username="kerem"))

    with django_capture_on_commit_callbacks(execute=True):
        response = kerem.post(
            "/admin/payouts/payout/",
            {"action": "approve_selected", helpers.ACTION_CHECKBOX_NAME: [refused.pk, covered.pk]},
            follow=True,
        )

    lines = _messages(response)
    assert lines[0].startswith(f"#{refused.pk}: Insufficient balance") and "-100.00 EUR" in lines[0]
    assert lines[1] == f"#{covered.pk} approved."
    _assert_still_requested(refused)
    covered.refresh_from_db()
    assert covered.status == PayoutStatus.PROCESSING
    assert len(wise.transfers) == 1


def test_a_partial_reversal_that_still_covers_the_payout_does_not_block_approval(wise):
    affiliate = AffiliateFactory()
    commission = earned_commission(affiliate, Decimal("150.00"), "EUR")
    payout = request_payout(affiliate=affiliate, amount=HUNDRED, currency="EUR", actor=affiliate.user)
    post_reversed(commission, Decimal("50.00"))

    approve_payout(payout_id=payout.pk, actor=SuperAdminFactory())

    payout.refresh_from_db()
    assert payout.status in (PayoutStatus.APPROVED, PayoutStatus.PROCESSING)
    assert available_balance(affiliate=affiliate, currency="EUR") == Decimal("0.00")


# --- (c) bad input writes nothing -----------------------------------------------------------------


BAD_INPUT = [
    ("100.00", "XYZ", "invalid_currency"),  # well-formed, not an ISO 4217 currency
    ("0", "EUR", "invalid_amount"),
    ("-5.00", "EUR", "invalid_amount"),
    ("1.001", "EUR", "invalid_amount"),  # EUR has 2 decimals
    ("10.5", "JPY", "invalid_amount"),  # JPY has none
]


@pytest.fixture
def rich_affiliate():
    """Funded in EUR and JPY, so a bad request could not be refused for want of balance."""
    affiliate = funded_affiliate(Decimal("1000.00"))
    earned_commission(affiliate, Decimal("100000"), "JPY")
    return affiliate


@pytest.mark.parametrize(("amount", "currency", "code"), BAD_INPUT)
def test_bad_input_is_refused_by_the_service_and_writes_nothing(rich_affiliate, amount, currency, code):
    transfers = Transfer.objects.count()
    with pytest.raises(ValidationError) as caught:
        request_payout(affiliate=rich_affiliate, amount=amount, currency=currency, actor=rich_affiliate.user)
    assert caught.value.code == code
    assert not Payout.objects.exists()
    assert Transfer.objects.count() == transfers
    assert not Account.objects.filter(currency=currency).exclude(currency__in=["EUR", "JPY"]).exists()


@pytest.mark.parametrize(("amount", "currency", "code"), BAD_INPUT)
def test_bad_input_is_400_in_the_api_and_writes_nothing(rich_affiliate, amount, currency, code):
    transfers = Transfer.objects.count()
    response = _client(rich_affiliate.user).post(
        "/api/payouts/", {"amount": amount, "currency": currency}, "application/json"
    )
    assert response.status_code == 400, response.content
    assert api_json(response)["error"] in (code, "validation_error")
    assert not Payout.objects.exists()
    assert Transfer.objects.count() == transfers


def test_unknown_currency_message_says_unsupported(rich_affiliate):
    with pytest.raises(ValidationError, match="unsupported currency"):
        request_payout(affiliate=rich_affiliate, amount=HUNDRED, currency="XYZ", actor=rich_affiliate.user)


def test_a_zero_decimal_currency_payout_reserves_whole_units(rich_affiliate):
    payout = request_payout(affiliate=rich_affiliate, amount=Decimal("2500"), currency="JPY", actor=rich_affiliate.user)
    held = Transfer.objects.get(pk=reservation_id(payout_id=payout.pk, attempt=1))
    assert (held.amount, held.currency) == (2500, "JPY")
    assert available_balance(affiliate=rich_affiliate, currency="JPY") == Decimal("97500")
