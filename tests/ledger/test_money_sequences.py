"""Sequences, not only races (issue 13): a hypothesis state machine drives random sequences of the
events users and providers cause through the PRODUCT's services (Stripe invoices, refunds and
disputes; payout request / review / retry / cancel; a simulated Wise dispatch; Wise state changes,
also late and repeated) and checks the money after EVERY step, per affiliate and currency:

- money out (PAYOUT posted - PAYOUT_RETURNED) <= what was earned net of reversals, read from the
  commission rows (approved: amount - reversed); more only in a documented clawback: the payable
  account went below zero at a reversal (refund, lost dispute) or a Wise success that posted, and
  while it is below zero no reservation (request, retry) and no approval succeeds;
- the books agree with the business rows: earned net of reversals in the ledger = the approved
  commissions' net; the payable's pending debits = the held amounts of requested / approved /
  processing payouts;
- debits = credits, balance columns = sums of transfers, each pending resolved at most once
  (ledger.checks.check_balances); no transfer id twice; check_ledger in full at each example's end.

A refusal (409 conflict, 422 illegal transition, 422 insufficient_balance ...) is an outcome of a
rule, not a failure; the rules assert that an insufficient_balance refusal happens exactly when the
ledger says the amount does not fit. Each example runs in a savepoint rolled back at its end.
CI: 200 examples x 30 steps; LEDGER_SEQUENCE_EXAMPLES / LEDGER_SEQUENCE_STEPS run more.
"""

import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from affiliates import services as affiliates
from affiliates.models import Commission, CommissionStatus
from audit.models import AuditEntry
from core.actors import SystemActor
from core.currencies import to_minor
from core.errors import BusinessRuleViolation, Conflict, IllegalTransition, PermissionDenied, ValidationError
from ledger.checks import check_balances, check_ledger
from ledger.models import Account, AccountKind, Transfer, TransferFlag, TransferKind
from payouts import services as payouts
from payouts.models import Payout, PayoutStatus
from payouts.services import dispatch
from payouts.services.attempts import current_attempt
from tests.factories.accounts import SuperAdminFactory
from tests.factories.affiliates import AffiliateFactory, ReferralFactory
from tests.ledger.conftest import summary_line

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
EXAMPLES = int(os.environ.get("LEDGER_SEQUENCE_EXAMPLES", "200"))
STEPS = int(os.environ.get("LEDGER_SEQUENCE_STEPS", "30"))
CURRENCIES = ("USD", "JPY", "KWD")
AFFILIATES = 2
STRIPE = SystemActor("test:stripe")
HOLD_JOB = SystemActor("test:hold")
# PermissionDenied: the same super-admin approving twice a payout that needs two (already_approved).
REFUSALS = (BusinessRuleViolation, Conflict, IllegalTransition, PermissionDenied)
HELD = (PayoutStatus.REQUESTED, PayoutStatus.APPROVED, PayoutStatus.PROCESSING)
WISE_STATES = ("bounced_back", "cancelled", "funds_refunded", "outgoing_payment_sent")
# Steps that may take a payable account below zero (ledger OVERDRAFT_KINDS): a reversal, or a
# Wise success posted after the hold was released.
CLAWBACK_STEPS = {"refund", "dispute_lost", "wise"}
STATS: Counter = Counter()

affiliate_index = st.integers(0, AFFILIATES - 1)
currency = st.sampled_from(CURRENCIES)
stripe_amount = st.integers(50, 300_000)  # Stripe's smallest unit of the currency
payout_units = st.integers(1, 30_000)  # in the payout's stored unit: cents, or yen for JPY
# What a reviewer types; a reject needs a non-blank one (payouts.reasons.clean_decision_reason).
review_reason = st.sampled_from(["duplicate request", "invoices checked", "bank details do not match"])
blank_reason = st.sampled_from(["", " ", " \r\n\t "])


def payout_minor(payout: Payout) -> int:
    return to_minor(payout.amount, payout.currency)


def payout_amount(units: int, cur: str) -> Decimal:
    return Decimal(units) if cur == "JPY" else Decimal(units) / 100


class MoneyMachine(RuleBasedStateMachine):
    world: dict = {}  # affiliates, referrals' customers, two super-admins: made once by the test

    def __init__(self) -> None:
        super().__init__()
        self._savepoint = transaction.atomic()
        self._savepoint.__enter__()
        self.affiliates = self.world["affiliates"]
        self.customers = self.world["customers"]
        self.admins = self.world["admins"]  # two: above the dual-approval threshold both must approve
        self.serial = 0
        self.clock = datetime(2026, 1, 1, tzinfo=UTC)
        self.invoices: list[dict] = []  # {"id", "aff", "cur", "paid": amount, "recorded": bool}
        self.payouts: list[int] = []
        self.statuses: dict[int, str] = {}  # payout id -> status, as of the last step
        self.transfers: dict[str, tuple[str, datetime] | None] = {}  # Wise transfer -> last (state, at)
        self.step = ""
        self.below_zero: dict[tuple[int, str], str] = {}  # book -> the step that took it below zero
        self.last = self._books()
        STATS["examples"] += 1

    def teardown(self) -> None:
        try:
            report = check_ledger()
            assert report.ok, report.summary()
        finally:
            transaction.set_rollback(True)
            self._savepoint.__exit__(None, None, None)

    def _next(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}_{self.serial}"

    def _call(self, outcome: str, fn, *args, **kwargs):
        """Run a service in its own savepoint; a domain refusal is an outcome, returned as the error."""
        try:
            with transaction.atomic():
                result = fn(*args, **kwargs)
        except REFUSALS as refused:
            STATS[f"{outcome}: refused {refused.code}"] += 1
            return refused
        STATS[f"{outcome}: done"] += 1
        return result

    def _available(self, aff: int, cur: str) -> int:
        return self.last[(aff, cur)]["available"]

    # --- Stripe -------------------------------------------------------------------------------

    @rule(data=st.data())
    def invoice_paid(self, data: st.DataObject) -> None:
        """invoice.paid: a new invoice, or one whose refund / dispute arrived first (or a replay)."""
        self.step = "invoice"
        early = [inv for inv in self.invoices if not inv["recorded"]]
        if self.invoices and data.draw(st.booleans(), label="an invoice seen before"):
            invoice = data.draw(st.sampled_from(early or self.invoices))
        else:
            invoice = self._new_invoice(data)
        paid_invoice = affiliates.PaidInvoice(
            self._next("evt"), invoice["id"], self.customers[invoice["aff"]], invoice["paid"], invoice["cur"]
        )
        self._call("invoice.paid", affiliates.record_commission, invoice=paid_invoice, actor=STRIPE)
        invoice["recorded"] = True

    @initialize(
        books=st.lists(st.tuples(affiliate_index, currency, stripe_amount), min_size=1, max_size=4),
        approve=st.booleans(),
    )
    def earlier_invoices(self, books: list[tuple[int, str, int]], approve: bool) -> None:
        """Where the example starts: a few paid invoices, their commissions approved or still held."""
        self.step = "invoice"
        for aff, cur, paid in books:
            invoice = {"id": self._next("in"), "aff": aff, "cur": cur, "paid": paid, "recorded": True}
            self.invoices.append(invoice)
            paid_invoice = affiliates.PaidInvoice(self._next("evt"), invoice["id"], self.customers[aff], paid, cur)
            assert affiliates.record_commission(invoice=paid_invoice, actor=STRIPE) is not None
        if approve:
            self.approve_held_commissions()

    @precondition(lambda self: self.held_commissions)
    @rule()
    def approve_held_commissions(self) -> None:
        self.step = "approve_held"
        later = timezone.now() + timedelta(days=django_settings.COMMISSION_HOLD_DAYS + 1)
        self._call("approve held", affiliates.approve_held_commissions, actor=HOLD_JOB, now=later)

    def _adjust(self, invoice: dict, kind: str, amount: int, status: str) -> None:
        object_id = f"{'ch' if kind == 'refund' else 'dp'}_{invoice['id']}"
        facts = affiliates.StripeAdjustmentFacts(
            kind, object_id, f"ch_{invoice['id']}", "", invoice["id"], amount, invoice["paid"], invoice["cur"], status
        )
        self._call(f"{kind} {status}", affiliates.record_stripe_adjustment, facts=facts, actor=STRIPE)

    @rule(data=st.data(), shape=st.sampled_from(["full", "partial", "before the invoice"]))
    def charge_refunded(self, data: st.DataObject, shape: str) -> None:
        """charge.refunded: full, partial (amount_refunded is cumulative: an older, smaller one
        delivered late is part of the draw), or for an invoice whose invoice.paid has not arrived."""
        self.step = "refund"
        if shape == "before the invoice" or not self.invoices:
            invoice = self._new_invoice(data)
            amount = data.draw(st.integers(1, invoice["paid"]))
        else:
            invoice = data.draw(st.sampled_from(self.invoices))
            amount = data.draw(st.integers(1, max(1, invoice["paid"] - 1))) if shape == "partial" else invoice["paid"]
        self._adjust(invoice, "refund", amount, "refunded")

    @precondition(lambda self: self.invoices)
    @rule(data=st.data(), status=st.sampled_from(["open", "won", "lost"]))
    def charge_dispute(self, data: st.DataObject, status: str) -> None:
        """charge.dispute.created (open) or charge.dispute.closed (won / lost), in any order."""
        self.step = f"dispute_{status}"
        invoice = data.draw(st.sampled_from(self.invoices))
        self._adjust(invoice, "dispute", invoice["paid"], status)

    def _new_invoice(self, data: st.DataObject) -> dict:
        invoice = {
            "id": self._next("in"),
            "aff": data.draw(affiliate_index, label="affiliate"),
            "cur": data.draw(currency, label="currency"),
            "paid": data.draw(stripe_amount, label="amount paid"),
            "recorded": False,
        }
        self.invoices.append(invoice)
        return invoice

    # --- payouts ------------------------------------------------------------------------------

    @rule(data=st.data(), units=payout_units, share=st.sampled_from([None, 1, 2, 3]))
    def request_payout(self, data: st.DataObject, units: int, share: int | None) -> None:
        """Any amount (or all / a half / a third of what is available, plus one unit or not), in
        any of the commission currencies, mostly where there is money: it fits exactly when the
        ledger's available balance covers it."""
        self.step = "request"
        funded = sorted(key for key, book in self.last.items() if book["available"] > 0)
        STATS[f"request: with money {bool(funded)}"] += 1
        if funded and data.draw(st.integers(0, 7), label="where there is money") > 0:
            aff, cur = data.draw(st.sampled_from(funded))
        else:
            aff, cur = data.draw(affiliate_index), data.draw(currency)
        available = self._available(aff, cur)
        if share is not None and available > 0:
            units = available // share // (10 if cur == "KWD" else 1) + (units % 2 if share == 1 else 0)
        amount = payout_amount(max(units, 1), cur)
        minor = to_minor(amount, cur)
        result = self._call(
            "request",
            payouts.request_payout,
            affiliate=self.affiliates[aff],
            amount=amount,
            currency=cur,
            actor=self.affiliates[aff].user,  # the affiliate asks; a requester never reviews
        )
        if isinstance(result, Exception):
            assert result.code == "insufficient_balance", result
            assert available < minor, f"refused although {available} >= {minor} is available"
            return
        assert available >= minor, f"reserved {minor} with {available} available (a negative balance is a clawback)"
        self.payouts.append(result.pk)

    def _pick(self, data: st.DataObject, *statuses: str) -> int:
        """Mostly a payout in the state the action starts from; sometimes any (a refusal)."""
        fitting = sorted(pk for pk, status in self.statuses.items() if status in statuses)
        if fitting and data.draw(st.integers(0, 5), label="in its source state") > 0:
            return data.draw(st.sampled_from(fitting))
        return data.draw(st.sampled_from(self.payouts))

    def _has(self, *statuses: str) -> bool:
        return any(status in statuses for status in self.statuses.values())

    def _review(self, name: str, data: st.DataObject, service, *sources: str) -> None:
        self.step = name
        payout_id = self._pick(data, *sources)
        payout = Payout.objects.get(pk=payout_id)
        aff = [a.pk for a in self.affiliates].index(payout.affiliate_id)
        available = self._available(aff, payout.currency)
        reviewer = data.draw(st.sampled_from(self.admins), label="reviewer")
        if name == "reject" and data.draw(st.integers(0, 5), label="reason given") == 0:
            self._reject_without_reason(payout_id, reviewer, data.draw(blank_reason, label="blank reason"))
            return
        reason = data.draw(review_reason, label="reason")
        result = self._call(name, service, payout_id=payout_id, actor=reviewer, reason=reason)
        if isinstance(result, PermissionDenied):
            assert (name, result.code) == ("approve", "already_approved"), result
        fits = {"approve": available >= 0, "retry": available >= payout_minor(payout)}
        if name in fits:
            if isinstance(result, Exception):
                if result.code == "insufficient_balance":
                    assert not fits[name], f"{name} refused with {available} available"
            else:
                assert fits[name], f"{name} of #{payout_id} succeeded with {available} available"

    def _reject_without_reason(self, payout_id: int, reviewer, reason: str) -> None:
        """A reject with an empty or blank reason is refused (reason_required) before anything is
        written: the payout row, its audit trail and the books are as they were."""
        payout_before = Payout.objects.filter(pk=payout_id).values().get()
        audit_before = AuditEntry.objects.count()
        transfers_before = list(Transfer.objects.order_by("id").values_list("id", "resolution"))
        with pytest.raises(ValidationError) as refused, transaction.atomic():
            payouts.reject_payout(payout_id=payout_id, actor=reviewer, reason=reason)
        assert refused.value.code == "reason_required", refused.value
        assert Payout.objects.filter(pk=payout_id).values().get() == payout_before
        assert list(Transfer.objects.order_by("id").values_list("id", "resolution")) == transfers_before
        assert AuditEntry.objects.count() == audit_before
        STATS["reject: refused reason_required"] += 1

    @precondition(lambda self: self._has(PayoutStatus.REQUESTED))
    @rule(data=st.data())
    def approve_payout(self, data: st.DataObject) -> None:
        self._review("approve", data, payouts.approve_payout, PayoutStatus.REQUESTED)

    @precondition(lambda self: self._has(PayoutStatus.REQUESTED))
    @rule(data=st.data())
    def reject_payout(self, data: st.DataObject) -> None:
        self._review("reject", data, payouts.reject_payout, PayoutStatus.REQUESTED)

    @precondition(lambda self: self._has(PayoutStatus.APPROVED))
    @rule(data=st.data())
    def cancel_payout(self, data: st.DataObject) -> None:
        self._review("cancel", data, payouts.cancel_payout, PayoutStatus.APPROVED)

    @precondition(lambda self: self._has(PayoutStatus.FAILED, PayoutStatus.CANCELLED))
    @rule(data=st.data())
    def retry_payout(self, data: st.DataObject) -> None:
        """failed -> requested (or cancelled -> requested): a new attempt, a new reservation."""
        self._review("retry", data, payouts.retry_payout, PayoutStatus.FAILED, PayoutStatus.CANCELLED)

    @precondition(lambda self: self._has(PayoutStatus.APPROVED))
    @rule(data=st.data())
    def dispatch(self, data: st.DataObject) -> None:
        """The dispatch task without HTTP: its own approved -> processing claim, then the Wise
        transfer id recorded on the current attempt the way the task records Wise's answer."""
        self.step = "dispatch"
        payout_id = self._pick(data, PayoutStatus.APPROVED)
        with transaction.atomic():
            payout = dispatch._start_processing(payout_id)
            if payout is None or payout.wise_transfer_id:
                STATS["dispatch: nothing to send"] += 1
                return
            transfer_id = f"wt_{payout.pk}_{current_attempt(payout).number}"
            dispatch._record(payout, wise_transfer_id=transfer_id)
        self.transfers[transfer_id] = None
        STATS["dispatch: done"] += 1

    @precondition(lambda self: self.transfers)
    @rule(data=st.data(), state=st.sampled_from(WISE_STATES), when=st.sampled_from(["next", "late", "repeat"]))
    def wise_state_change(self, data: st.DataObject, state: str, when: str) -> None:
        """transfers#state-change for any dispatched attempt's transfer (old attempts' too):
        in order, late (older than the last event of that transfer) or the same event again."""
        self.step = "wise"
        transfer_id = data.draw(st.sampled_from(sorted(self.transfers)))
        last = self.transfers[transfer_id]
        self.clock += timedelta(minutes=1)
        occurred_at = self.clock
        if last is not None and when == "late":
            occurred_at = last[1] - timedelta(seconds=30)
        elif last is not None and when == "repeat":
            state, occurred_at = last
        outcome = self._call(
            f"wise {state}", payouts.record_wise_state, transfer_id=transfer_id, state=state, occurred_at=occurred_at
        )
        assert not isinstance(outcome, Exception), outcome
        STATS[f"wise outcome {outcome}"] += 1
        if when == "repeat" and last is not None:
            assert outcome == payouts.SettleOutcome.DUPLICATE, outcome
        if last is None or occurred_at > last[1]:
            self.transfers[transfer_id] = (state, occurred_at)

    # --- after every step -------------------------------------------------------------------

    def _books(self) -> dict[tuple[int, str], dict[str, int]]:
        """Per (affiliate index, currency): the payable's columns and what the transfers and the
        business rows say."""
        owners = {str(a.pk): i for i, a in enumerate(self.affiliates)}
        books = {(i, cur): Counter() for i in range(AFFILIATES) for cur in CURRENCIES}
        accounts = Account.objects.filter(kind=AccountKind.AFFILIATE_PAYABLE, owner_id__in=owners)
        by_pk = {}
        for account in accounts:
            key = (owners[account.owner_id], account.currency)
            by_pk[account.pk] = key
            books[key]["available"] = account.credits_posted - account.debits_posted - account.debits_pending
            books[key]["pending"] = account.debits_pending
        rows = Transfer.objects.filter(flag__in=(TransferFlag.PLAIN, TransferFlag.POST_PENDING)).values_list(
            "debit_account_id", "credit_account_id", "kind", "amount"
        )
        for debit, credit, kind, amount in rows:
            if kind == TransferKind.PAYOUT and debit in by_pk:
                books[by_pk[debit]]["out"] += amount
            elif kind == TransferKind.PAYOUT_RETURNED and credit in by_pk:
                books[by_pk[credit]]["out"] -= amount
            elif kind == TransferKind.COMMISSION_EARNED and credit in by_pk:
                books[by_pk[credit]]["earned_ledger"] += amount
            elif kind == TransferKind.COMMISSION_REVERSED and debit in by_pk:
                books[by_pk[debit]]["earned_ledger"] -= amount
        self.held_commissions = 0
        for commission in Commission.objects.only(
            "affiliate_id", "currency", "amount", "reversed_minor", "status", "disputed"
        ):
            if commission.status == CommissionStatus.APPROVED:
                books[(owners[str(commission.affiliate_id)], commission.currency)]["earned"] += commission.net_minor
            self.held_commissions += commission.status == CommissionStatus.PENDING and not commission.disputed
        self.statuses = {}
        for payout in Payout.objects.only("affiliate_id", "currency", "amount", "status"):
            self.statuses[payout.pk] = payout.status
            if payout.status in HELD:
                books[(owners[str(payout.affiliate_id)], payout.currency)]["held"] += payout_minor(payout)
        return books

    @invariant()
    def money_out_never_exceeds_money_earned(self) -> None:
        STATS["steps"] += 1
        books = self._books()
        for key, now in books.items():
            before = self.last.get(key, Counter())
            assert now["earned_ledger"] == now["earned"], (key, "ledger earned != approved commissions' net", now)
            assert now["pending"] == now["held"], (key, "pending debits != held payouts", now)
            if now["available"] < 0 <= before["available"]:
                assert self.step in CLAWBACK_STEPS, f"{key} went below zero at a {self.step!r}: {now}"
                self.below_zero[key] = self.step
                STATS[f"clawback at {self.step}"] += 1
            elif now["available"] >= 0:
                self.below_zero.pop(key, None)
            if now["out"] > now["earned"]:
                assert key in self.below_zero, f"{key}: {now['out']} paid out of {now['earned']} earned: {now}"
        self.last = books

    @invariant()
    def the_books_balance(self) -> None:
        findings = check_balances()
        assert not findings, "\n".join(map(str, findings))
        ids = Transfer.objects.values_list("id", flat=True)
        assert ids.count() == ids.distinct().count()
        resolutions = Counter(Transfer.objects.filter(pending__isnull=False).values_list("pending_id", flat=True))
        assert all(n == 1 for n in resolutions.values()), resolutions


def test_random_money_sequences_never_pay_more_than_was_earned():
    started = time.perf_counter()
    affiliates_ = [AffiliateFactory() for _ in range(AFFILIATES)]
    MoneyMachine.world = {
        "affiliates": affiliates_,
        "customers": [ReferralFactory(affiliate=a).stripe_customer_id for a in affiliates_],
        "admins": [SuperAdminFactory(), SuperAdminFactory()],
    }
    STATS.clear()
    run_state_machine_as_test(
        MoneyMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    elapsed = time.perf_counter() - started
    outcomes = ", ".join(f"{k}={v}" for k, v in sorted(STATS.items()) if k not in ("examples", "steps"))
    summary_line(
        f"[figures] money state machine: {STATS['examples']} examples x up to {STEPS} steps = {STATS['steps']} "
        f"checked states in {elapsed:.1f}s; {outcomes}"
    )
