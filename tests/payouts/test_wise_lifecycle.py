"""Wise's transfer lifecycle as Wise documents it, end to end through the signed webhook and the books.

incoming_payment_waiting -> processing -> funds_converted -> outgoing_payment_sent, and the unhappy
path outgoing_payment_sent -> bounced_back -> processing -> cancelled -> funds_refunded: bounced_back
is NOT final, a payout already sent can bounce weeks later, and only cancelled / funds_refunded /
charged_back are final failures. Each scenario here failed on the code that took bounced_back as
final and forgot an attempt's transfer id on retry; each ends with check_ledger passing.
"""

import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.management import call_command

from audit.models import BeaconCount
from core.errors import BusinessRuleViolation
from ledger.models import Account, AccountKind, Transfer, TransferKind
from payouts.keys import wise_transaction_id
from payouts.models import Payout, PayoutAttempt, PayoutStatus
from payouts.selectors import available_balance
from payouts.services import approve_payout, dispatch_wise_transfer, request_payout, retry_payout
from tests.factories.accounts import SuperAdminFactory
from tests.factories.payouts import PayoutFactory
from tests.payouts.helpers import api_json, deliver, funded_processing_payout, wise_time

pytestmark = pytest.mark.django_db
AMOUNT = Decimal("310.00")  # PayoutFactory's; the factory credits the affiliate exactly this much




def _send(client, wise, transfer_id: str, state: str, minutes: float) -> str:
    response = deliver(client, wise, transfer_id, state, wise_time(minutes))
    assert response.status_code == 200, response.content
    return api_json(response)["outcome"]


def _payable(payout: Payout) -> Account:
    return Account.objects.get(kind=AccountKind.AFFILIATE_PAYABLE, owner_id=str(payout.affiliate_id), currency="EUR")


def _available(payout: Payout) -> Decimal:
    return available_balance(affiliate=payout.affiliate, currency="EUR")


def _beacons(kind: str) -> int:
    return sum(BeaconCount.objects.filter(kind=kind).values_list("count", flat=True))


def _refused_request(payout: Payout) -> None:
    with pytest.raises(BusinessRuleViolation) as caught:
        request_payout(affiliate=payout.affiliate, amount=Decimal("0.01"), currency="EUR", actor=payout.affiliate.user)
    assert caught.value.code == "insufficient_balance"


def test_bounced_back_then_sent_for_the_same_transfer_ends_paid_with_the_money_posted_once(wise, client):
    # given
    payout = funded_processing_payout()
    transfer = payout.wise_transfer_id
    # when: Wise reports the bounce, then (newer) the success of the same transfer
    assert _send(client, wise, transfer, "bounced_back", 5) == "recorded"
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.PROCESSING  # not final: nothing released meanwhile
    assert _available(payout) == 0
    assert _send(client, wise, transfer, "outgoing_payment_sent", 10) == "applied"
    # then: paid, the hold posted once, nothing returned or re-booked, nothing free to request
    payout.refresh_from_db()
    assert (payout.status, payout.wise_state, payout.paid_after_failure_at) == ("paid", "outgoing_payment_sent", None)
    account = _payable(payout)
    assert (account.debits_posted, account.debits_pending) == (31000, 0)
    booked = set(Transfer.objects.filter(reference=f"payouts.payout:{payout.pk}").values_list("pk", flat=True))
    reserve = f"payout:{payout.pk}:attempt:1:reserve"
    assert booked == {reserve, Transfer.objects.get(pending_id=reserve).pk}
    assert Transfer.objects.get(pending_id=reserve).flag == "post_pending"
    assert _available(payout) == 0
    _refused_request(payout)
    assert _beacons("payout_paid_after_failure") == 0
    call_command("check_ledger")


def test_a_paid_payout_that_bounces_weeks_later_credits_the_affiliate_again_once(wise, client):
    # given: paid
    payout = funded_processing_payout()
    transfer = payout.wise_transfer_id
    assert _send(client, wise, transfer, "outgoing_payment_sent", 3) == "applied"
    assert _available(payout) == 0
    # when: it bounces three weeks later, then Wise refunds it (a final failure of a paid transfer)
    assert _send(client, wise, transfer, "bounced_back", 60 * 24 * 21) == "recorded"
    assert _send(client, wise, transfer, "funds_refunded", 60 * 24 * 22) == "settled_already"
    # then: re-credited exactly once, the payout stays paid (paid never goes back), a human is told
    payout.refresh_from_db()
    assert (payout.status, payout.wise_state) == ("paid", "funds_refunded")
    returned = Transfer.objects.get(pk=f"payout:{payout.pk}:attempt:1:returned")
    assert (returned.kind, returned.amount, returned.flag) == (TransferKind.PAYOUT_RETURNED, 31000, "plain")
    assert (returned.debit_account.kind, returned.credit_account_id) == (AccountKind.WISE_CLEARING, _payable(payout).pk)
    assert _available(payout) == AMOUNT
    assert _beacons("payout_failed_after_paid") == 1
    call_command("check_ledger")


def test_a_bounced_payout_sent_after_all_is_debited_again_even_below_zero(wise, client):
    # given: paid, bounced (re-credited), and the affiliate requested the re-credited money again
    payout = funded_processing_payout()
    transfer = payout.wise_transfer_id
    _send(client, wise, transfer, "outgoing_payment_sent", 3)
    _send(client, wise, transfer, "bounced_back", 60 * 24 * 14)
    again = request_payout(affiliate=payout.affiliate, amount=AMOUNT, currency="EUR", actor=payout.affiliate.user)
    # when: the bounced transfer reports a success after all
    assert _send(client, wise, transfer, "outgoing_payment_sent", 60 * 24 * 15) == "paid_after_failure"
    # then: debited again (a clawback carried forward), the critical beacon, the admin flag
    resent = Transfer.objects.get(pk=f"payout:{payout.pk}:attempt:1:resent")
    assert (resent.kind, resent.amount, resent.debit_account_id) == (TransferKind.PAYOUT, 31000, _payable(payout).pk)
    assert _available(payout) == -AMOUNT  # 310 earned, 620 sent, 310 held by the new request
    assert BeaconCount.objects.get(kind="payout_paid_after_failure").count == 1
    payout.refresh_from_db()
    assert payout.status == "paid" and payout.paid_after_failure_at is not None
    _refused_request(payout)  # nothing can be reserved while the account is below zero
    assert Payout.objects.get(pk=again.pk).status == "requested"
    # a replay of the same success books nothing more
    assert _send(client, wise, transfer, "outgoing_payment_sent", 60 * 24 * 15) == "duplicate"
    assert _available(payout) == -AMOUNT
    call_command("check_ledger")


def test_a_success_after_a_final_failure_is_posted_raises_the_critical_beacon_and_shows_in_the_admin(
    wise, client, admin_client
):
    # given: Wise cancelled the transfer; the payout failed and its hold was voided
    payout = funded_processing_payout()
    transfer = payout.wise_transfer_id
    assert _send(client, wise, transfer, "cancelled", 5) == "applied"
    payout.refresh_from_db()
    assert payout.status == "failed" and _available(payout) == AMOUNT
    # when: the same transfer reports a success later
    assert _send(client, wise, transfer, "outgoing_payment_sent", 30) == "paid_after_failure"
    # then: the money is posted (a plain payout, since the hold was voided), the payout is paid
    # through its declared failed -> paid transition, and the critical beacon is counted
    late = Transfer.objects.get(pk=f"payout:{payout.pk}:attempt:1:late_success")
    assert (late.kind, late.amount, late.flag) == (TransferKind.PAYOUT, 31000, "plain")
    assert _available(payout) == 0
    payout.refresh_from_db()
    assert payout.status == "paid" and payout.paid_after_failure_at is not None
    assert BeaconCount.objects.get(kind="payout_paid_after_failure").count == 1
    assert payout.attempts.get().wise_state == "outgoing_payment_sent"
    # the admin shows it, in the list and on the change page
    listing = admin_client.get("/admin/payouts/payout/?status=all").content.decode()
    assert "PAID AFTER FAILURE" in listing
    page = admin_client.get(f"/admin/payouts/payout/{payout.pk}/change/").content.decode()
    assert "Paid after failure at" in page and transfer in page
    # a retry is no longer possible: the payout is paid
    assert _send(client, wise, transfer, "outgoing_payment_sent", 31) == "settled_already"
    assert _available(payout) == 0
    call_command("check_ledger")


def test_events_of_an_old_attempts_transfer_after_a_retry_are_applied_to_that_attempt(wise, client):
    # given: attempt 1 failed (cancelled at Wise), retried, attempt 2 dispatched with a new transfer
    admin = SuperAdminFactory()
    payout = funded_processing_payout()
    first = payout.wise_transfer_id
    assert _send(client, wise, first, "cancelled", 5) == "applied"
    retry_payout(payout_id=payout.pk, actor=admin, reason="bank fixed")
    approve_payout(payout_id=payout.pk, actor=admin)
    assert dispatch_wise_transfer(payout_id=payout.pk) == "funded"
    payout.refresh_from_db()
    second = payout.wise_transfer_id
    assert payout.attempt == 2 and second and second != first
    attempts = dict(PayoutAttempt.objects.filter(payout=payout).values_list("number", "wise_transfer_id"))
    assert attempts == {1: first, 2: second}  # the retry kept attempt 1's transfer id
    # when: attempt 1's transfer reports its refund, then (late) a success
    assert _send(client, wise, first, "funds_refunded", 40) == "settled_already"  # recognised, not unknown
    assert PayoutAttempt.objects.get(payout=payout, number=1).wise_state == "funds_refunded"
    assert _send(client, wise, first, "outgoing_payment_sent", 50) == "paid_after_failure"
    # then: applied to attempt 1 only; attempt 2 is untouched and still in flight
    payout.refresh_from_db()
    assert (payout.status, payout.attempt, payout.wise_state) == ("processing", 2, "")
    assert PayoutAttempt.objects.get(payout=payout, number=1).wise_state == "outgoing_payment_sent"
    assert Transfer.objects.filter(pk=f"payout:{payout.pk}:attempt:1:late_success").exists()
    assert payout.paid_after_failure_at is not None
    assert BeaconCount.objects.get(kind="payout_paid_after_failure").count == 1
    call_command("check_ledger")
    # and attempt 2's own success settles the payout as usual: both attempts' money is on the books
    assert _send(client, wise, second, "outgoing_payment_sent", 60) == "applied"
    payout.refresh_from_db()
    assert payout.status == "paid"
    assert _payable(payout).debits_posted == 2 * 31000
    assert _available(payout) == -AMOUNT  # paid twice out of 310 earned: a clawback carried forward
    call_command("check_ledger")


def test_the_data_migration_gives_existing_transfers_an_attempt_row_once(wise, client):
    # given: payouts dispatched before attempts were recorded (only the payout's columns know the transfer)
    backfill = importlib.import_module("payouts.migrations.0003_backfill_payout_attempts").backfill
    sent = PayoutFactory(
        status=PayoutStatus.PAID, attempt=2, wise_transfer_id="9001", wise_state="outgoing_payment_sent"
    )
    PayoutFactory(status=PayoutStatus.REQUESTED)  # never dispatched: nothing to record
    # when: the migration runs (twice: a re-run adds nothing)
    backfill(apps, None)
    backfill(apps, None)
    # then
    attempt = PayoutAttempt.objects.get()
    assert (attempt.payout_id, attempt.number, attempt.wise_transfer_id) == (sent.pk, 2, "9001")
    assert attempt.customer_transaction_id == wise_transaction_id(payout_id=sent.pk, attempt=2)
    assert attempt.wise_state == "outgoing_payment_sent"
    # and that transfer's later events are recognised
    assert _send(client, wise, "9001", "bounced_back", 60) == "recorded"
    assert PayoutAttempt.objects.get().wise_state == "bounced_back"
