"""Fixtures of the ledger tests: an affiliate's payable account and the platform's accounts, plus
the summary lines (figures, durations) printed at the end of every run, CI's included."""

import itertools
from collections.abc import Iterator

import pytest
from django.db import connection

from ledger.models import Account, AccountKind, Transfer, TransferKind
from ledger.services import account_for, post_transfer
from tests.summary import SummarySection

SUMMARY = SummarySection("ledger: figures")
summary_line = SUMMARY.add
_ids = itertools.count(1)


def next_id(prefix: str) -> str:
    return f"{prefix}:{next(_ids)}"


@pytest.fixture
def payable():
    return account_for(kind=AccountKind.AFFILIATE_PAYABLE, owner_id="affiliate:1", currency="EUR")


@pytest.fixture
def expense():
    return account_for(kind=AccountKind.COMMISSION_EXPENSE, currency="EUR")


@pytest.fixture
def clearing():
    return account_for(kind=AccountKind.WISE_CLEARING, currency="EUR")


@pytest.fixture
def refunds():
    return account_for(kind=AccountKind.REFUNDS, currency="EUR")


def earn(payable, expense, amount: int, transfer_id: str | None = None) -> Transfer:
    """A commission earned: the platform's expense debited, the affiliate's payable credited."""
    return post_transfer(
        transfer_id=transfer_id or next_id("commission"),
        debit=expense,
        credit=payable,
        amount=amount,
        kind=TransferKind.COMMISSION_EARNED,
        reference="affiliates.commission:1",
    )


def ledger_rows() -> tuple[int, list[tuple]]:
    """(transfer count, every account's columns): to assert that a refusal wrote nothing."""
    columns = list(
        Account.objects.order_by("pk").values_list(
            "pk", "debits_pending", "debits_posted", "credits_pending", "credits_posted"
        )
    )
    return Transfer.objects.count(), columns


@pytest.fixture
def immutability_trigger_off() -> Iterator[None]:
    """For the few tests that must tamper with a transfer to prove check_ledger sees it. Runs
    inside the test's transaction, so the trigger is back on when the test's rollback ends."""
    with connection.cursor() as cursor:
        # Django's foreign keys are deferred: fire their pending checks first, or PostgreSQL
        # refuses the ALTER TABLE ("pending trigger events").
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE ledger_transfer DISABLE TRIGGER ledger_transfer_immutable")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    yield
