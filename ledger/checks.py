"""The books' invariants, verified from the rows (what `manage.py check_ledger` runs).

1. Per currency, over all accounts: posted debits = posted credits, pending debits = pending
   credits (the trial balance; tracked accounts counted by their columns).
2. Every tracked account's four columns = the sums of its transfers, a pending transfer counted
   as pending until its post or void; an untracked account's columns are all zero.
3. Every pending transfer is resolved at most once.
4. Every resolution refers to a pending transfer and copies its debit and credit accounts,
   currency and kind; a post moves at most the pending amount (a partial post, TigerBeetle's
   rule: the rest is released), a void records exactly the pending amount.
5. Every transfer is in its accounts' currency, a known one.
6. An enforce_balance account is below zero only if a single-phase OVERDRAFT_KINDS debit (a reversal,
   a payout Wise sent after its hold was released) took it there.

`verify_books()` is what the command and the hourly beat task run: the same checks on one snapshot
of the books, and on any finding the critical beacon `ledger_check_failed` (sent through
core.signals.beacon_requested: the ledger does not import audit).
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Count, F, Q

from core.currencies import from_minor, known_currencies
from core.errors import ValidationError
from core.money import format_money
from core.signals import beacon_requested
from ledger.models import OVERDRAFT_KINDS, RESOLUTION_FLAGS, Account, Transfer, TransferFlag
from ledger.selectors import COLUMNS, Balance, TrialBalanceRow, account_balances, derived_balances, trial_balance

LEDGER_CHECK_FAILED = "ledger_check_failed"  # a critical beacon kind (declared in AuditConfig.ready())
MAX_FINDINGS_IN_BEACON = 20


def money(minor: int, currency: str) -> str:
    """An amount in a finding as money ('€10.05'): findings are read in the alert mail and the
    command's output. An unknown currency (itself a finding) keeps its raw minor units."""
    try:
        return format_money(from_minor(int(minor), currency), currency)
    except ValidationError:
        return f"{minor} (minor units of {currency!r})"


@dataclass(frozen=True)
class Finding:
    check: str
    message: str
    account_id: int | None = None  # the account it is about, when it is about one

    def __str__(self) -> str:
        return f"[{self.check}] {self.message}"


@dataclass
class LedgerReport:
    transfers: int
    accounts: int
    currencies: list[str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        currencies = ", ".join(self.currencies) or "none"
        if self.ok:
            return f"ledger OK: {self.transfers} transfers, {self.accounts} accounts, currencies {currencies}"
        lines = [f"ledger has {len(self.findings)} problem(s) ({self.transfers} transfers, {self.accounts} accounts):"]
        return "\n".join([*lines, *(f"  {finding}" for finding in self.findings)])


def check_ledger() -> LedgerReport:
    """Run every check; the report lists each difference found (empty = the books are right).
    Six queries whatever the size of the books (seven when an account is below zero)."""
    accounts, derived = list(Account.objects.order_by("pk")), derived_balances()
    rows = trial_balance(account_balances(accounts, derived))
    report = LedgerReport(
        transfers=Transfer.objects.count(), accounts=len(accounts), currencies=[row.currency for row in rows]
    )
    report.findings += _balance_findings(accounts, derived, rows)
    report.findings += _resolutions()
    report.findings += _currencies(accounts)
    report.findings += _overdrafts(accounts)
    return report


def verify_books() -> LedgerReport:
    """check_ledger() on one snapshot of the books, then, if it found anything, the critical beacon
    `ledger_check_failed` naming the first account concerned and listing the findings."""
    if connection.in_atomic_block:  # the caller's transaction decides what it sees
        report = check_ledger()
    else:
        with transaction.atomic():
            _snapshot()
            report = check_ledger()
    if not report.ok:
        accounts = [f.account_id for f in report.findings if f.account_id is not None]
        details = {
            "problems": len(report.findings),
            "account_id": accounts[0] if accounts else None,
            "findings": [str(f) for f in report.findings[:MAX_FINDINGS_IN_BEACON]],
        }
        beacon_requested.send(sender=LedgerReport, kind=LEDGER_CHECK_FAILED, details=details)
    return report


def _snapshot() -> None:
    # Under READ COMMITTED each of check_ledger's statements would see the books at a different
    # moment: a posting committed between reading the accounts and summing the transfers would
    # read as a column that differs from its transfers, a false alarm. REPEATABLE READ gives all
    # of them the snapshot of the first. (SQLite, the demo's database, reads one snapshot anyway.)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")


def check_balances(accounts: list[Account] | None = None) -> list[Finding]:
    """Checks 1-3 alone: what a posting could break, cheap enough to assert after every step of a
    long random sequence (tests/ledger/test_sequences.py). Three queries; two when the caller
    passes every account, just read."""
    accounts = list(Account.objects.order_by("pk")) if accounts is None else accounts
    derived = derived_balances()
    return _balance_findings(accounts, derived, trial_balance(account_balances(accounts, derived)))


def _balance_findings(
    accounts: list[Account], derived: dict[int, Balance], rows: list[TrialBalanceRow]
) -> list[Finding]:
    return [*_trial_balance(rows), *_columns(accounts, derived), *_resolved_twice()]


def _trial_balance(rows: list[TrialBalanceRow]) -> Iterator[Finding]:
    for row in rows:
        if row.debits_posted != row.credits_posted:
            yield Finding(
                "trial_balance",
                f"{row.currency}: posted debits {money(row.debits_posted, row.currency)} != posted credits "
                f"{money(row.credits_posted, row.currency)} "
                f"(difference {money(row.debits_posted - row.credits_posted, row.currency)})",
            )
        if row.debits_pending != row.credits_pending:
            yield Finding(
                "trial_balance",
                f"{row.currency}: pending debits {money(row.debits_pending, row.currency)} != pending credits "
                f"{money(row.credits_pending, row.currency)}",
            )


def _columns(accounts: list[Account], derived: dict[int, Balance]) -> Iterator[Finding]:
    for account in accounts:
        expected = derived.get(account.pk, Balance()) if account.tracks_balance else Balance()
        source = "the sum of its transfers" if account.tracks_balance else "what an untracked account holds"
        for column in COLUMNS:
            have, want = getattr(account, column), getattr(expected, column)
            if have != want:
                yield Finding(
                    "columns",
                    f"account {account.pk} ({account}): {column} = {money(have, account.currency)}, "
                    f"{source} = {money(want, account.currency)} (difference {money(have - want, account.currency)})",
                    account_id=account.pk,
                )


COPIED = ("debit_account_id", "credit_account_id", "currency", "kind")


def _resolved_twice() -> Iterator[Finding]:
    # The UNIQUE pending_id makes this impossible while the constraint stands; the check is
    # what would notice it gone.
    twice = Transfer.objects.filter(pending__isnull=False).values("pending_id").annotate(n=Count("id")).filter(n__gt=1)
    for row in twice:
        yield Finding("resolved_once", f"pending transfer {row['pending_id']!r} is resolved {row['n']} times")


def _resolutions() -> Iterator[Finding]:
    copies = ~Q(**{name.removesuffix("_id"): F(f"pending__{name.removesuffix('_id')}") for name in COPIED})
    over_posted = Q(flag=TransferFlag.POST_PENDING, amount__gt=F("pending__amount"))
    void_differs = Q(flag=TransferFlag.VOID_PENDING) & ~Q(amount=F("pending__amount"))
    wrong = Transfer.objects.filter(flag__in=RESOLUTION_FLAGS).filter(
        ~Q(pending__flag=TransferFlag.PENDING) | copies | over_posted | void_differs
    )
    fields = ["id", "pending_id", "flag", "amount", *COPIED]
    for row in wrong.values(*fields, *(f"pending__{name}" for name in ["flag", "amount", *COPIED])):
        yield from _resolution_findings(row)


def _resolution_findings(row: dict[str, object]) -> Iterator[Finding]:
    this, pending = repr(row["id"]), repr(row["pending_id"])
    if row["pending__flag"] != TransferFlag.PENDING:
        yield Finding("resolution", f"{this} resolves {pending}, which is not a pending transfer")
    if any(row[name] != row[f"pending__{name}"] for name in COPIED):
        yield Finding("resolution", f"{this} does not copy the accounts, currency and kind of {pending}")
    held, amount = row["pending__amount"], row["amount"]
    if (row["flag"] == TransferFlag.POST_PENDING and amount > held) or (  # type: ignore[operator]
        row["flag"] == TransferFlag.VOID_PENDING and amount != held
    ):
        shown = money(int(amount), str(row["currency"]))  # type: ignore[call-overload]
        yield Finding("resolution", f"{this} ({row['flag']}) has amount {shown}, beyond what {pending} held")


def _currencies(accounts: list[Account]) -> Iterator[Finding]:
    mixed = Transfer.objects.exclude(currency=F("debit_account__currency"), credit_account__currency=F("currency"))
    for t in mixed.only("id", "currency"):
        yield Finding("currency", f"transfer {t.pk!r} in {t.currency} does not match its accounts' currency")
    for account in accounts:
        if account.currency not in known_currencies():
            yield Finding(
                "currency", f"account {account.pk} is in unknown currency {account.currency!r}", account_id=account.pk
            )


def _overdrafts(accounts: list[Account]) -> Iterator[Finding]:
    below_zero = {
        a.pk: a for a in accounts if a.enforce_balance and a.credits_posted < a.debits_posted + a.debits_pending
    }
    if not below_zero:
        return
    reversed_ = Transfer.objects.filter(
        debit_account_id__in=below_zero, kind__in=OVERDRAFT_KINDS, flag=TransferFlag.PLAIN
    )
    for pk in set(below_zero) - set(reversed_.values_list("debit_account_id", flat=True)):
        account = below_zero[pk]
        yield Finding(
            "overdraft",
            f"account {pk} ({account}) is below zero "
            f"({money(account.credits_posted - account.debits_posted - account.debits_pending, account.currency)}) "
            "with no reversal",
            account_id=pk,
        )
