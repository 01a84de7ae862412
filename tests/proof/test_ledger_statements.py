"""The SQL the books' operations send, pinned statement by statement: a payout request (the
reservation), the approval with the books' re-check, a post and a void of a reservation, and a
commission's earn posting. The builders are bench/ledger.py's OPERATIONS, so the bench prints
exactly what CI holds the code to (docs/BENCHMARKS.md, section 5).

Transactional tests, so BEGIN/COMMIT are real. SAVEPOINT / RELEASE are sent to the server too and
count as statements here (round trips), unlike BEGIN/COMMIT which the helper sets apart.
"""

import pytest
from django.db import connection

from bench.ledger import OPERATIONS
from bench.proof import operations
from bench.proof.statements import capture
from ledger.models import Account, AccountKind
from tests.proof.conftest import summary_line

pytestmark = pytest.mark.django_db(transaction=True)

# The ledger's write (ledger.services._insert_and_move): ONE `INSERT ... ON CONFLICT DO NOTHING
# RETURNING id` (no row back = a replay or a lost race, read afterwards; no savepoint, no
# IntegrityError) and the one UPDATE of the tracked account's columns. The platform account keeps
# no columns: never updated. A guarded posting (a reservation) alone runs in a savepoint when the
# caller's transaction is open, so a refusal undoes that posting only; an unguarded one (a post or
# void of a reservation, an earn) cannot be refused after its insert and takes none.
LEDGER_WRITE = ["INSERT ledger_transfer ON CONFLICT", "UPDATE ledger_account"]
EXPECTED: dict[str, list[str]] = {
    "request": [
        "BEGIN",
        "INSERT payouts_payout",
        "SELECT ledger_account",  # the affiliate's payable (account_for)
        "SELECT ledger_account",  # the platform's Wise clearing (account_for): both as stored, not re-read
        "SAVEPOINT",  # the guarded reservation may be refused after its insert
        *LEDGER_WRITE,  # the UPDATE is the guarded reservation: credits_posted >= debits + pending + amount
        "RELEASE",
        "COMMIT",
    ],
    "approve": [
        "BEGIN",
        "SELECT payouts_payout",
        "UPDATE payouts_payout",  # the guarded transition
        "INSERT audit_auditentry",
        "SELECT ledger_account FOR UPDATE",  # the books' re-check: the payable is not below zero
        "COMMIT",
    ],
    "post": [
        "BEGIN",
        "SELECT ledger_transfer",  # the pending transfer with both accounts, one join
        *LEDGER_WRITE,  # the resolution (UNIQUE pending_id) and the payable's pending -> posted
        "COMMIT",
    ],
    "void": [
        "BEGIN",
        "SELECT ledger_transfer",
        *LEDGER_WRITE,  # the resolution and the payable's hold released
        "COMMIT",
    ],
    "earn": [
        "BEGIN",
        # ONE statement (ledger.services._post_by_ref): both accounts looked up by identity, the
        # transfer inserted, the payable credited; the expense row is only read.
        "WITH INSERT ledger_transfer, UPDATE ledger_account",
        "COMMIT",
    ],
}
APPROVE_BUDGET = 5  # statements, BEGIN/COMMIT not counted (issue 13)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_statements_per_ledger_operation(name):
    operation = OPERATIONS[name]()

    with operations.tasks_queued_not_run():
        captured = capture(operation.run)

    listing = "\n".join(f"  {kind:40} {sql[:110]}" for kind, sql in zip(captured.kinds, captured.sql, strict=True))
    assert captured.kinds == EXPECTED[name], f"{operation.name} sent:\n{listing}"
    summary_line(f"statements: {operation.name}: {captured.describe()}: {', '.join(captured.kinds)}")


def test_an_approval_including_the_books_stays_within_five_statements():
    operation = OPERATIONS["approve"]()

    with operations.tasks_queued_not_run():
        captured = capture(operation.run)

    assert captured.kinds.count("BEGIN") == 1, captured.kinds
    assert captured.statements <= APPROVE_BUDGET, captured.kinds
    assert "SELECT ledger_account FOR UPDATE" in captured.kinds  # the books are in the count
    summary_line(f"statements: approve incl. the books: {captured.statements} (budget {APPROVE_BUDGET})")


def test_a_posting_never_updates_a_platform_account():
    """No global hot row: the earn posting writes a new version of the affiliate's payable row
    and none of the platform's commission-expense row (its xmin is unchanged). The expense row
    does get the foreign-key check's FOR KEY SHARE lock at COMMIT (its xmax moves), a lock that
    conflicts with no other posting's: KEY SHARE locks share, and no posting updates that row
    (bench/ledger.py (b) samples 0% of backends waiting on a lock at 16 clients)."""
    operation = OPERATIONS["earn"]()
    expense = Account.objects.get(kind=AccountKind.COMMISSION_EXPENSE, currency="EUR")
    payable = Account.objects.filter(kind=AccountKind.AFFILIATE_PAYABLE).latest("pk")  # the operation's affiliate
    expense_version, payable_version = row_version(expense.pk), row_version(payable.pk)

    captured = capture(operation.run)

    transfer = captured.result
    assert (transfer.debit_account_id, transfer.credit_account_id) == (expense.pk, payable.pk)
    assert row_version(expense.pk) == expense_version  # read, never updated
    assert row_version(payable.pk) != payable_version  # the payable's new version
    assert not any(kind.startswith("SELECT") and "FOR" in kind for kind in captured.kinds)


def row_version(account_id: int) -> str:
    """xmin: the transaction that wrote the row's current version."""
    with connection.cursor() as cursor:
        cursor.execute('SELECT xmin::text FROM "ledger_account" WHERE "id" = %s', [account_id])
        return cursor.fetchone()[0]
