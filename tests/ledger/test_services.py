"""ledger.services, rule by rule: validation that writes nothing, idempotent ids, the guarded
reservation, two-phase resolution at most once, reversals that may overdraw."""

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core.errors import BusinessRuleViolation, Conflict, ErrorCode, NotFound, ValidationError
from ledger.errors import LedgerErrorCode
from ledger.models import Account, AccountKind, Transfer, TransferFlag, TransferKind
from ledger.selectors import Balance, available, balance
from ledger.services import AccountRef, account_for, post_pending, post_transfer, reserve, void_pending
from tests.ledger.conftest import earn, ledger_rows, next_id

pytestmark = pytest.mark.django_db


def columns(account: Account) -> tuple[int, int, int, int]:
    account.refresh_from_db()
    return account.debits_pending, account.debits_posted, account.credits_pending, account.credits_posted


def pay_out(payable, clearing, amount: int, transfer_id: str | None = None) -> Transfer:
    return reserve(
        transfer_id=transfer_id or next_id("payout"),
        debit=payable,
        credit=clearing,
        amount=amount,
        kind=TransferKind.PAYOUT,
        reference="payouts.payout:1",
    )


# --- accounts ----------------------------------------------------------------------------------


def test_account_for_creates_once_with_the_kinds_policy(payable, expense):
    assert (payable.tracks_balance, payable.enforce_balance) == (True, True)
    assert (expense.tracks_balance, expense.enforce_balance, expense.owner_id) == (False, False, "")
    again = account_for(kind=AccountKind.AFFILIATE_PAYABLE, owner_id="affiliate:1", currency="eur")
    assert again.pk == payable.pk
    assert Account.objects.count() == 2


@pytest.mark.parametrize(
    ("kind", "owner_id", "currency", "code"),
    [
        (AccountKind.AFFILIATE_PAYABLE, "affiliate:1", "ABC", ErrorCode.UNKNOWN_CURRENCY),
        (AccountKind.AFFILIATE_PAYABLE, "", "EUR", LedgerErrorCode.INVALID_ACCOUNT),
        (AccountKind.WISE_CLEARING, "affiliate:1", "EUR", LedgerErrorCode.INVALID_ACCOUNT),
        ("savings", "", "EUR", LedgerErrorCode.INVALID_KIND),
    ],
)
def test_account_for_refuses_bad_input_and_writes_nothing(kind, owner_id, currency, code):
    with pytest.raises(ValidationError) as refused:
        account_for(kind=kind, owner_id=owner_id, currency=currency)
    assert refused.value.code == code
    assert not Account.objects.exists()


# --- single-phase transfers --------------------------------------------------------------------


def test_a_posting_moves_the_tracked_columns_and_derives_the_platforms(payable, expense):
    transfer = earn(payable, expense, 1_000)
    assert (transfer.flag, transfer.currency, transfer.amount) == (TransferFlag.PLAIN, "EUR", 1_000)
    assert columns(payable) == (0, 0, 0, 1_000)
    assert columns(expense) == (0, 0, 0, 0)  # no hot platform row: its balance is its transfers
    assert balance(expense).debits_posted == 1_000
    assert available(payable) == 1_000


@pytest.mark.parametrize("amount", [0, -1, 1.5, 10.0, Decimal("10"), True, False, "10", None, 2**63])
def test_an_amount_that_is_not_a_positive_int_is_refused_and_writes_nothing(payable, expense, amount):
    before = ledger_rows()
    with pytest.raises(ValidationError) as refused:
        earn(payable, expense, amount)
    assert refused.value.code == LedgerErrorCode.INVALID_AMOUNT
    assert ledger_rows() == before


def test_mixed_currencies_are_refused_and_write_nothing(payable):
    yen = account_for(kind=AccountKind.COMMISSION_EXPENSE, currency="JPY")
    before = ledger_rows()
    with pytest.raises(ValidationError) as refused:
        earn(payable, yen, 100)
    assert refused.value.code == LedgerErrorCode.CURRENCY_MISMATCH
    assert ledger_rows() == before


def test_an_account_in_an_unknown_currency_cannot_post(payable):
    # Only a row written around account_for() can hold one; the posting still refuses it.
    odd = Account.objects.create(kind=AccountKind.AFFILIATE_PAYABLE, owner_id="x", currency="ABC", tracks_balance=True)
    other = Account.objects.create(kind=AccountKind.COMMISSION_EXPENSE, currency="ABC")
    with pytest.raises(ValidationError) as refused:
        earn(odd, other, 100)
    assert refused.value.code == ErrorCode.UNKNOWN_CURRENCY
    assert not Transfer.objects.exists()


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"transfer_id": ""}, LedgerErrorCode.INVALID_TRANSFER_ID),
        ({"transfer_id": "   "}, LedgerErrorCode.INVALID_TRANSFER_ID),
        ({"transfer_id": "x" * 256}, LedgerErrorCode.INVALID_TRANSFER_ID),
        ({"transfer_id": 12}, LedgerErrorCode.INVALID_TRANSFER_ID),
        ({"kind": "gift"}, LedgerErrorCode.INVALID_KIND),
        ({"reference": "r" * 256}, LedgerErrorCode.INVALID_REFERENCE),
        ({"credit": "payable"}, LedgerErrorCode.SAME_ACCOUNT),
        ({"credit": Account(kind=AccountKind.REFUNDS, currency="EUR")}, LedgerErrorCode.INVALID_ACCOUNT),
    ],
)
def test_malformed_postings_are_refused_and_write_nothing(payable, expense, changes, code):
    args = {
        "transfer_id": "commission:1:earn",
        "debit": expense,
        "credit": payable,
        "amount": 100,
        "kind": TransferKind.COMMISSION_EARNED,
        "reference": "affiliates.commission:1",
    }
    args.update(changes)
    if args["credit"] == "payable":
        args["debit"] = args["credit"] = payable
    with pytest.raises(ValidationError) as refused:
        post_transfer(**args)
    assert refused.value.code == code
    assert not Transfer.objects.exists()


def test_a_replayed_posting_returns_the_original_and_moves_nothing_again(payable, expense):
    first = earn(payable, expense, 500, transfer_id="commission:7:earn")
    replay = earn(payable, expense, 500, transfer_id="commission:7:earn")
    assert replay.pk == first.pk and replay.created_at == first.created_at
    assert Transfer.objects.count() == 1
    assert columns(payable) == (0, 0, 0, 500)


def test_a_transfer_id_reused_with_other_fields_is_refused(payable, expense):
    earn(payable, expense, 500, transfer_id="commission:7:earn")
    before = ledger_rows()
    with pytest.raises(ValidationError) as refused:
        earn(payable, expense, 501, transfer_id="commission:7:earn")
    assert refused.value.code == LedgerErrorCode.TRANSFER_ID_REUSED
    assert str(refused.value) == "transfer id reused with different fields"
    assert refused.value.details["differs"] == ["amount"]
    assert ledger_rows() == before


def test_a_plain_debit_of_an_affiliate_is_guarded_too(payable, expense, refunds):
    earn(payable, expense, 100)
    with pytest.raises(BusinessRuleViolation) as refused:
        post_transfer(transfer_id="adjust:1", debit=payable, credit=refunds, amount=101, kind=TransferKind.ADJUSTMENT)
    assert refused.value.code == LedgerErrorCode.INSUFFICIENT_BALANCE
    assert refused.value.details["available"] == 100
    assert columns(payable) == (0, 0, 0, 100)


# --- accounts by identity (AccountRef): the one-statement posting -------------------------------

PAYABLE_REF = AccountRef(kind=AccountKind.AFFILIATE_PAYABLE, owner_id="affiliate:1", currency="EUR")
EXPENSE_REF = AccountRef(kind=AccountKind.COMMISSION_EXPENSE, currency="EUR")
REFUNDS_REF = AccountRef(kind=AccountKind.REFUNDS, currency="EUR")


def earn_by_ref(amount: int, **changes) -> Transfer:
    args = {"debit": EXPENSE_REF, "credit": PAYABLE_REF, "amount": amount, "kind": TransferKind.COMMISSION_EARNED}
    return post_transfer(transfer_id="commission:9:earn", **{**args, **changes})


def test_a_first_posting_by_identity_creates_the_accounts_and_posts():
    transfer = earn_by_ref(700)
    payable = Account.objects.get(kind=AccountKind.AFFILIATE_PAYABLE, owner_id="affiliate:1")
    assert (payable.tracks_balance, payable.enforce_balance) == (True, True)  # the kind's policy
    assert Transfer.objects.get() == transfer and transfer.credit_account_id == payable.pk
    assert columns(payable) == (0, 0, 0, 700)


def test_a_posting_by_identity_is_one_statement_once_the_accounts_exist(payable, expense):
    earn(payable, expense, 100)
    with CaptureQueriesContext(connection) as sent:
        transfer = earn_by_ref(250)
    assert len(sent.captured_queries) == 1, [q["sql"][:80] for q in sent.captured_queries]
    stored = Transfer.objects.get(pk=transfer.pk)
    fields = ("debit_account_id", "credit_account_id", "amount", "currency", "kind", "flag", "reference")
    assert [getattr(stored, f) for f in fields] == [getattr(transfer, f) for f in fields]
    assert (transfer.debit_account_id, transfer.credit_account_id) == (expense.pk, payable.pk)
    assert columns(payable) == (0, 0, 0, 350)


def test_a_replay_by_identity_returns_the_original_and_a_reused_id_is_refused(payable, expense):
    first = earn_by_ref(500)
    assert earn_by_ref(500).created_at == first.created_at
    before = ledger_rows()
    with pytest.raises(ValidationError) as refused:
        earn_by_ref(501)
    assert refused.value.code == LedgerErrorCode.TRANSFER_ID_REUSED
    assert ledger_rows() == before
    assert columns(payable) == (0, 0, 0, 500)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"debit": PAYABLE_REF}, LedgerErrorCode.SAME_ACCOUNT),
        ({"debit": AccountRef(kind=AccountKind.COMMISSION_EXPENSE, currency="JPY")}, LedgerErrorCode.CURRENCY_MISMATCH),
        (
            {
                "debit": AccountRef(kind=AccountKind.COMMISSION_EXPENSE, currency="ABC"),
                "credit": AccountRef(kind=AccountKind.AFFILIATE_PAYABLE, owner_id="1", currency="ABC"),
            },
            ErrorCode.UNKNOWN_CURRENCY,
        ),
        ({"credit": AccountRef(kind=AccountKind.AFFILIATE_PAYABLE, currency="EUR")}, LedgerErrorCode.INVALID_ACCOUNT),
        ({"credit": AccountRef(kind="wallet", owner_id="1", currency="EUR")}, LedgerErrorCode.INVALID_KIND),
        ({"amount": Decimal("5.00")}, LedgerErrorCode.INVALID_AMOUNT),
        ({"amount": 0}, LedgerErrorCode.INVALID_AMOUNT),
        ({"kind": "gift"}, LedgerErrorCode.INVALID_KIND),
    ],
)
def test_a_malformed_posting_by_identity_is_refused_and_writes_nothing(payable, expense, changes, code):
    before = ledger_rows()
    with pytest.raises(ValidationError) as refused:
        earn_by_ref(**{"amount": 100, **changes})
    assert refused.value.code == code
    assert ledger_rows() == before


def test_a_guarded_debit_by_identity_is_still_guarded(payable, expense):
    earn(payable, expense, 100)
    with pytest.raises(BusinessRuleViolation) as refused:
        post_transfer(
            transfer_id="adjust:2", debit=PAYABLE_REF, credit=REFUNDS_REF, amount=101, kind=TransferKind.ADJUSTMENT
        )
    assert refused.value.code == LedgerErrorCode.INSUFFICIENT_BALANCE
    assert columns(payable) == (0, 0, 0, 100)
    assert not Transfer.objects.filter(pk="adjust:2").exists()


def test_a_reversal_by_identity_may_overdraw_in_one_statement(payable, expense, refunds):
    earn(payable, expense, 100)
    with CaptureQueriesContext(connection) as sent:
        post_transfer(
            transfer_id="commission:9:reverse",
            debit=PAYABLE_REF,
            credit=REFUNDS_REF,
            amount=150,
            kind=TransferKind.COMMISSION_REVERSED,
        )
    assert len(sent.captured_queries) == 1
    assert columns(payable) == (0, 150, 0, 100)
    assert available(payable) == -50


# --- reservations ------------------------------------------------------------------------------


def test_a_reservation_holds_the_amount(payable, expense, clearing):
    earn(payable, expense, 1_000)
    pending = pay_out(payable, clearing, 600)
    assert pending.flag == TransferFlag.PENDING
    assert columns(payable) == (600, 0, 0, 1_000)
    assert available(payable) == 400
    assert balance(clearing).credits_pending == 600


def test_a_reservation_beyond_the_available_balance_is_refused_with_the_available_amount(payable, expense, clearing):
    earn(payable, expense, 1_000)
    pay_out(payable, clearing, 600)
    before = ledger_rows()
    with pytest.raises(BusinessRuleViolation) as refused:
        pay_out(payable, clearing, 401, transfer_id="payout:2:attempt:1:reserve")
    error = refused.value
    assert error.code == LedgerErrorCode.INSUFFICIENT_BALANCE
    assert error.status_code == 422
    assert (error.details["available"], error.details["requested"], error.details["currency"]) == (400, 401, "EUR")
    assert ledger_rows() == before
    assert not Transfer.objects.filter(pk="payout:2:attempt:1:reserve").exists()
    assert pay_out(payable, clearing, 400).amount == 400  # exactly the available amount fits
    assert available(payable) == 0


def test_a_refusal_inside_the_callers_transaction_undoes_only_the_refused_posting(payable, expense, clearing):
    with transaction.atomic():
        earn(payable, expense, 100)
        with pytest.raises(BusinessRuleViolation):
            pay_out(payable, clearing, 101)
    assert Transfer.objects.count() == 1
    assert columns(payable) == (0, 0, 0, 100)


def test_a_caller_cannot_lift_the_guard_with_an_altered_instance(payable, expense, clearing):
    earn(payable, expense, 100)
    payable.enforce_balance = False  # in memory only: the stored row decides
    with pytest.raises(BusinessRuleViolation):
        pay_out(payable, clearing, 101)


def test_a_replayed_reservation_returns_the_original_even_when_nothing_is_left(payable, expense, clearing):
    earn(payable, expense, 100)
    first = pay_out(payable, clearing, 100, transfer_id="payout:1:attempt:1:reserve")
    assert pay_out(payable, clearing, 100, transfer_id="payout:1:attempt:1:reserve").pk == first.pk
    assert columns(payable) == (100, 0, 0, 100)


# --- resolution --------------------------------------------------------------------------------


def test_posting_a_reservation_moves_it_from_pending_to_posted_on_both_sides(payable, expense, clearing):
    earn(payable, expense, 1_000)
    pending = pay_out(payable, clearing, 600)
    posted = post_pending(pending_id=pending.pk)
    assert (posted.pk, posted.flag, posted.pending_id, posted.amount) == (
        f"{pending.pk}:post",
        TransferFlag.POST_PENDING,
        pending.pk,
        600,
    )
    assert (posted.debit_account_id, posted.credit_account_id, posted.kind) == (payable.pk, clearing.pk, "payout")
    assert columns(payable) == (0, 600, 0, 1_000)
    assert balance(clearing).credits_posted == 600 and balance(clearing).credits_pending == 0
    assert available(payable) == 400


def test_a_partial_post_releases_the_rest(payable, expense, clearing):
    earn(payable, expense, 1_000)
    pending = pay_out(payable, clearing, 600)
    post_pending(pending_id=pending.pk, amount=450)
    assert columns(payable) == (0, 450, 0, 1_000)
    assert available(payable) == 550


def test_posting_more_than_was_held_is_refused(payable, expense, clearing):
    earn(payable, expense, 1_000)
    pending = pay_out(payable, clearing, 600)
    with pytest.raises(ValidationError) as refused:
        post_pending(pending_id=pending.pk, amount=601)
    assert refused.value.code == LedgerErrorCode.EXCEEDS_PENDING_AMOUNT
    assert columns(payable) == (600, 0, 0, 1_000)


def test_voiding_a_reservation_releases_it(payable, expense, clearing):
    earn(payable, expense, 1_000)
    pending = pay_out(payable, clearing, 600)
    void = void_pending(pending_id=pending.pk)
    assert (void.pk, void.flag, void.amount) == (f"{pending.pk}:void", TransferFlag.VOID_PENDING, 600)
    assert columns(payable) == (0, 0, 0, 1_000)
    assert balance(clearing) == Balance()  # held, then released: nothing left on either side


@pytest.mark.parametrize("resolve", [post_pending, void_pending])
def test_the_same_resolution_twice_returns_the_first(payable, expense, clearing, resolve):
    earn(payable, expense, 1_000)
    pending = pay_out(payable, clearing, 600)
    first = resolve(pending_id=pending.pk)
    assert resolve(pending_id=pending.pk).pk == first.pk
    assert resolve(pending_id=pending.pk, transfer_id="another:id").pk == first.pk  # the pending_id decides
    assert Transfer.objects.filter(pending=pending).count() == 1
    assert columns(payable) == ((0, 600, 0, 1_000) if resolve is post_pending else (0, 0, 0, 1_000))


@pytest.mark.parametrize(("first", "second"), [(post_pending, void_pending), (void_pending, post_pending)])
def test_the_other_resolution_after_one_won_is_a_conflict(payable, expense, clearing, first, second):
    earn(payable, expense, 1_000)
    pending = pay_out(payable, clearing, 600)
    winner = first(pending_id=pending.pk)
    before = ledger_rows()
    with pytest.raises(Conflict) as lost:
        second(pending_id=pending.pk)
    assert lost.value.code == LedgerErrorCode.PENDING_ALREADY_RESOLVED
    assert (lost.value.details["resolved_by"], lost.value.details["resolution"]) == (winner.pk, winner.flag)
    assert ledger_rows() == before


def test_a_second_post_of_another_amount_is_a_conflict(payable, expense, clearing):
    earn(payable, expense, 1_000)
    pending = pay_out(payable, clearing, 600)
    post_pending(pending_id=pending.pk, amount=500)
    with pytest.raises(Conflict):
        post_pending(pending_id=pending.pk, transfer_id="other", amount=600)


def test_only_a_pending_transfer_can_be_resolved(payable, expense):
    plain = earn(payable, expense, 100)
    with pytest.raises(ValidationError) as refused:
        post_pending(pending_id=plain.pk)
    assert refused.value.code == LedgerErrorCode.NOT_PENDING
    with pytest.raises(NotFound):
        void_pending(pending_id="payout:404:reserve")


# --- reversals ---------------------------------------------------------------------------------


def test_a_reversal_after_the_money_went_out_may_overdraw_and_then_blocks_reservations(
    payable, expense, clearing, refunds
):
    # given: 100 earned and paid out
    earn(payable, expense, 100)
    post_pending(pending_id=pay_out(payable, clearing, 100).pk)
    # when: the invoice behind it is refunded (a clawback carried forward)
    post_transfer(
        transfer_id="commission:1:reverse",
        debit=payable,
        credit=refunds,
        amount=100,
        kind=TransferKind.COMMISSION_REVERSED,
    )
    # then: the account is below zero and no reservation fits until it is back above
    assert available(payable) == -100
    with pytest.raises(BusinessRuleViolation) as refused:
        pay_out(payable, clearing, 1)
    assert refused.value.details["available"] == -100
    earn(payable, expense, 150)
    assert pay_out(payable, clearing, 50).amount == 50
    assert available(payable) == 0


def test_a_returned_payout_credits_the_affiliate_again(payable, expense, clearing):
    earn(payable, expense, 100)
    posted = post_pending(pending_id=pay_out(payable, clearing, 100).pk)
    post_transfer(
        transfer_id=f"{posted.pk}:returned",
        debit=clearing,
        credit=payable,
        amount=100,
        kind=TransferKind.PAYOUT_RETURNED,
    )
    assert available(payable) == 100
    assert balance(clearing).posted == 0
