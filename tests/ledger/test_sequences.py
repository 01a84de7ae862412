"""Sequences, not only races: a hypothesis state machine drives random events through the ledger's
services against a plain-Python model of every affiliate account, and checks after EVERY step:

- each affiliate account's four columns equal the model (so each refusal and each replay moved
  nothing, and each success moved exactly what TigerBeetle's rules say);
- debits = credits per currency, columns = sums of transfers, every pending transfer resolved at
  most once (ledger.checks.check_balances); the whole of check_ledger (resolutions matching their
  pending transfer, currencies, overdrafts only after a reversal) passes at the end of each example;
- available >= 0 unless a clawback (a reversal after the money went out) took it below, and then
  no reservation succeeds while it is negative (the reserve rule asserts the refusal).

Each example runs in a savepoint that is rolled back when it ends. CI: 60 examples x 30 steps;
LEDGER_EXAMPLES=<n> runs more.
"""

import os
import time
from dataclasses import dataclass

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from core.errors import BusinessRuleViolation, Conflict, ValidationError
from ledger.checks import check_balances, check_ledger
from ledger.errors import LedgerErrorCode
from ledger.models import Account, AccountKind, Transfer, TransferKind
from ledger.services import account_for, post_pending, post_transfer, reserve, void_pending
from tests.ledger.conftest import summary_line

pytestmark = [pytest.mark.django_db, pytest.mark.slow]  # ~40-60 s on the 2-core box; CI runs it
# 60 in CI: the money-level machine (test_money_sequences.py, 200 x 30) drives these primitives
# through every product event; this one checks the primitives alone. LEDGER_EXAMPLES runs more.
EXAMPLES = int(os.environ.get("LEDGER_EXAMPLES", "60"))
STEPS = 30
BOOKS = [("affiliate:1", "EUR"), ("affiliate:2", "EUR"), ("affiliate:1", "JPY"), ("affiliate:1", "KWD")]
books = st.integers(0, len(BOOKS) - 1)
amounts = st.integers(1, 5_000)
STATS = {"examples": 0, "steps": 0, "refused": 0, "clawbacks": 0}


@dataclass
class Model:
    credits_posted: int = 0
    debits_posted: int = 0
    debits_pending: int = 0
    clawed_back: bool = False

    @property
    def available(self) -> int:
        return self.credits_posted - self.debits_posted - self.debits_pending


@dataclass
class Pending:
    id: str
    book: int
    amount: int
    resolution: tuple[str, int] | None = None  # ("post", amount) or ("void", amount)
    returned: bool = False


class LedgerMachine(RuleBasedStateMachine):
    book_accounts: list[dict[str, Account]] = []  # created once by the test, outside the examples

    def __init__(self) -> None:
        super().__init__()
        self._savepoint = transaction.atomic()
        self._savepoint.__enter__()
        self.accounts = self.book_accounts
        self.models = [Model() for _ in BOOKS]
        self.pendings: list[Pending] = []
        self.postings: list[dict] = []
        self.serial = 0
        STATS["examples"] += 1

    def teardown(self) -> None:
        try:  # the whole of check_ledger once per example; checks 1-3 ran after every step
            report = check_ledger()
            assert report.ok, report.summary()
        finally:
            transaction.set_rollback(True)
            self._savepoint.__exit__(None, None, None)

    def _id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}:{self.serial}"

    def _post(self, book: int, debit: str, credit: str, amount: int, kind: str, transfer_id: str) -> Transfer:
        args = {
            "transfer_id": transfer_id,
            "debit": self.accounts[book][debit],
            "credit": self.accounts[book][credit],
            "amount": amount,
            "kind": kind,
        }
        transfer = post_transfer(**args)
        self.postings.append(args)
        return transfer

    # --- events -----------------------------------------------------------------------------

    @rule(book=books, amount=amounts)
    def commission_earned(self, book: int, amount: int) -> None:
        self._post(book, "commission_expense", "payable", amount, TransferKind.COMMISSION_EARNED, self._id("earn"))
        self.models[book].credits_posted += amount

    @rule(book=books, amount=amounts)
    def payout_reserved(self, book: int, amount: int) -> None:
        model, transfer_id = self.models[book], self._id("reserve")
        fits = model.available >= amount
        try:
            reserve(
                transfer_id=transfer_id,
                debit=self.accounts[book]["payable"],
                credit=self.accounts[book]["wise_clearing"],
                amount=amount,
                kind=TransferKind.PAYOUT,
            )
        except BusinessRuleViolation as refused:
            assert not fits, f"refused although {model.available} >= {amount}"
            assert refused.code == LedgerErrorCode.INSUFFICIENT_BALANCE
            assert refused.details["available"] == model.available
            STATS["refused"] += 1
            return
        assert fits, f"reserved {amount} with only {model.available} available"  # also: never while negative
        model.debits_pending += amount
        self.pendings.append(Pending(transfer_id, book, amount))

    @precondition(lambda self: self.pendings)
    @rule(data=st.data(), partial=st.booleans())
    def payout_posted(self, data: st.DataObject, partial: bool) -> None:
        pending = data.draw(st.sampled_from(self.pendings))
        amount = data.draw(st.integers(1, pending.amount)) if partial else pending.amount
        self._resolve(pending, "post", amount, lambda: post_pending(pending_id=pending.id, amount=amount))

    @precondition(lambda self: self.pendings)
    @rule(data=st.data())
    def payout_voided(self, data: st.DataObject) -> None:
        pending = data.draw(st.sampled_from(self.pendings))
        self._resolve(pending, "void", pending.amount, lambda: void_pending(pending_id=pending.id))

    def _resolve(self, pending: Pending, action: str, amount: int, call) -> None:
        first = pending.resolution
        try:
            result = call()
        except Conflict:
            assert first is not None and first[0] != action, (first, action)
            return
        except ValidationError as refused:  # "<id>:post" again with another amount
            assert refused.code == LedgerErrorCode.TRANSFER_ID_REUSED and first == ("post", first[1]), first
            assert first[1] != amount
            return
        if first is not None:  # a late or repeated event: the first resolution, unchanged
            assert first == (action, amount) and result.pending_id == pending.id
            return
        pending.resolution = (action, amount)
        model = self.models[pending.book]
        model.debits_pending -= pending.amount
        model.debits_posted += amount if action == "post" else 0

    @precondition(lambda self: any(p.resolution and p.resolution[0] == "post" for p in self.pendings))
    @rule(data=st.data())
    def payout_returned(self, data: st.DataObject) -> None:
        """A sent payout bounced back: the affiliate is credited again (once per payout)."""
        pending = data.draw(st.sampled_from([p for p in self.pendings if p.resolution and p.resolution[0] == "post"]))
        amount = pending.resolution[1]
        self._post(
            pending.book, "wise_clearing", "payable", amount, TransferKind.PAYOUT_RETURNED, f"{pending.id}:returned"
        )
        if not pending.returned:
            pending.returned = True
            self.models[pending.book].credits_posted += amount

    @rule(book=books, amount=amounts)
    def commission_reversed(self, book: int, amount: int) -> None:
        """A refund or a lost dispute: reversed even if the money already went out (clawback)."""
        self._post(book, "payable", "refunds", amount, TransferKind.COMMISSION_REVERSED, self._id("reverse"))
        model = self.models[book]
        model.debits_posted += amount
        if model.available < 0:
            model.clawed_back = True
            STATS["clawbacks"] += 1

    @precondition(lambda self: self.postings)
    @rule(data=st.data())
    def event_replayed(self, data: st.DataObject) -> None:
        """A retried webhook or task: the same posting again returns the original, moves nothing."""
        args = data.draw(st.sampled_from(self.postings))
        assert post_transfer(**args).pk == args["transfer_id"]

    # --- after every step -------------------------------------------------------------------

    @invariant()
    def columns_match_the_model_and_the_books_balance(self) -> None:
        STATS["steps"] += 1
        accounts = list(Account.objects.order_by("pk"))
        rows = {account.pk: account for account in accounts}
        for book, model in enumerate(self.models):
            row = rows[self.accounts[book]["payable"].pk]
            stored = (row.credits_posted, row.debits_posted, row.debits_pending, row.credits_pending)
            assert stored == (model.credits_posted, model.debits_posted, model.debits_pending, 0), (book, stored, model)
        findings = check_balances(accounts)
        assert not findings, findings

    @invariant()
    def below_zero_only_after_a_clawback(self) -> None:
        for model in self.models:
            assert model.available >= 0 or model.clawed_back, model


def book_accounts(owner: str, currency: str) -> dict[str, Account]:
    accounts = {kind: account_for(kind=kind, currency=currency) for kind in AccountKind if kind != "affiliate_payable"}
    return {**accounts, "payable": account_for(kind=AccountKind.AFFILIATE_PAYABLE, owner_id=owner, currency=currency)}


def test_random_sequences_keep_the_books_right():
    started = time.perf_counter()
    LedgerMachine.book_accounts = [book_accounts(owner, currency) for owner, currency in BOOKS]
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    summary_line(
        f"[figures] ledger state machine: {STATS['examples']} examples x up to {STEPS} steps = {STATS['steps']} "
        f"checked states, {STATS['refused']} reservations refused, "
        f"{STATS['clawbacks']} reversals left an account below zero, {time.perf_counter() - started:.1f}s"
    )
