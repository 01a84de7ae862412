"""check_ledger: passes on a sound book, exits non-zero with a readable report on any difference."""

import io
import threading

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection, connections

from audit.models import BeaconCount, CriticalBeacon
from audit.services import raise_beacon_alerts
from audit.severity import beacon_kind
from ledger import checks
from ledger.checks import LEDGER_CHECK_FAILED, check_ledger, verify_books
from ledger.models import AccountKind, TransferKind
from ledger.services import account_for, post_pending, post_transfer, reserve, void_pending
from ledger.tasks import check_ledger_task
from tests.ledger.conftest import earn

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(payable, expense, clearing, refunds):
    earn(payable, expense, 1_000, transfer_id="c1")
    post_pending(
        pending_id=reserve(transfer_id="p1", debit=payable, credit=clearing, amount=300, kind=TransferKind.PAYOUT).pk
    )
    void_pending(
        pending_id=reserve(transfer_id="p2", debit=payable, credit=clearing, amount=200, kind=TransferKind.PAYOUT).pk
    )
    reserve(transfer_id="p3", debit=payable, credit=clearing, amount=100, kind=TransferKind.PAYOUT)
    post_transfer(transfer_id="r1", debit=payable, credit=refunds, amount=900, kind=TransferKind.COMMISSION_REVERSED)
    yen = account_for(kind=AccountKind.AFFILIATE_PAYABLE, owner_id="affiliate:1", currency="JPY")
    earn(yen, account_for(kind=AccountKind.COMMISSION_EXPENSE, currency="JPY"), 1_500, transfer_id="c2")


def run_command() -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("check_ledger", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_a_sound_book_passes(book):
    out, err = run_command()
    assert out.strip() == "ledger OK: 8 transfers, 6 accounts, currencies EUR, JPY"
    assert err == ""


def test_an_empty_book_passes():
    assert run_command()[0].strip() == "ledger OK: 0 transfers, 0 accounts, currencies none"


def failing_report() -> str:
    err = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("check_ledger", stdout=io.StringIO(), stderr=err)
    assert failed.value.returncode == 1  # manage.py exits with it
    return err.getvalue()


def test_an_edited_balance_column_fails_with_the_difference(book, payable):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_account SET credits_posted = credits_posted + 5 WHERE id = %s", [payable.pk])
    report = failing_report()
    assert "[columns] account" in report
    assert "credits_posted = €10.05, the sum of its transfers = €10.00 (difference €0.05)" in report
    assert "[trial_balance] EUR: posted debits €22.00 != posted credits €22.05" in report


def test_a_moved_platform_column_fails(book, clearing):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_account SET debits_posted = 7 WHERE id = %s", [clearing.pk])
    assert "debits_posted = €0.07, what an untracked account holds = €0.00" in failing_report()


def test_an_edited_transfer_fails(book, immutability_trigger_off):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_transfer SET amount = 999 WHERE id = 'c1'")
    assert "credits_posted = €10.00, the sum of its transfers = €9.99" in failing_report()


def test_a_resolution_that_does_not_match_its_pending_transfer_fails(book, payable, clearing):
    # Written around the service (inserts are allowed by the trigger): a void of p3 for less than held.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_transfer (id, debit_account_id, credit_account_id, amount, currency, kind, flag, "
            "pending_id, reference, created_at) VALUES ('p3:void', %s, %s, 40, 'EUR', 'payout', 'void_pending', "
            "'p3', '', now())",
            [payable.pk, clearing.pk],
        )
    report = check_ledger()
    assert not report.ok
    assert "[resolution] 'p3:void' (void_pending) has amount €0.40, beyond what 'p3' held" in report.summary()


def test_an_overdraft_without_a_reversal_fails(payable, expense):
    earn(payable, expense, 100)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_account SET debits_posted = 150 WHERE id = %s", [payable.pk])
    assert "[overdraft]" in failing_report()


def test_a_resolution_of_a_plain_transfer_with_other_accounts_fails(book, payable, clearing):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_transfer (id, debit_account_id, credit_account_id, amount, currency, kind, flag, "
            "pending_id, reference, created_at) VALUES ('c1:post', %s, %s, 10, 'EUR', 'payout', 'post_pending', "
            "'c1', '', now())",
            [clearing.pk, payable.pk],
        )
    findings = {str(f) for f in check_ledger().findings}
    assert "[resolution] 'c1:post' resolves 'c1', which is not a pending transfer" in findings
    assert "[resolution] 'c1:post' does not copy the accounts, currency and kind of 'c1'" in findings


def test_a_transfer_in_another_currency_than_its_accounts_fails(book, payable, expense):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_transfer (id, debit_account_id, credit_account_id, amount, currency, kind, flag, "
            "reference, created_at) VALUES ('odd', %s, %s, 10, 'JPY', 'adjustment', 'plain', '', now())",
            [expense.pk, payable.pk],
        )
    assert "[currency] transfer 'odd' in JPY does not match its accounts' currency" in failing_report()


def test_check_ledger_reads_a_fixed_number_of_statements(book, django_assert_max_num_queries):
    with django_assert_max_num_queries(7):
        assert check_ledger().ok


# --- A failed check is a critical beacon; beat runs the check every hour -----------------------


def test_a_failed_check_raises_the_critical_beacon_and_one_alert_naming_the_account(
    book, payable, django_capture_on_commit_callbacks
):
    # given: a tracked column moved behind the books' back
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_account SET credits_posted = credits_posted + 5 WHERE id = %s", [payable.pk])

    # when: the command runs (beat's task runs the same verify_books)
    failing_report()

    # then: the critical beacon, naming the account, with the findings
    assert beacon_kind(LEDGER_CHECK_FAILED).critical  # AuditConfig.ready() declares the ledger's kind
    assert BeaconCount.objects.get(kind=LEDGER_CHECK_FAILED).count == 1
    beacon = CriticalBeacon.objects.get(kind=LEDGER_CHECK_FAILED)
    assert beacon.details["account_id"] == payable.pk and beacon.details["problems"] == 2
    assert any("credits_posted = €10.05" in finding for finding in beacon.details["findings"])
    # and the next alert run mails it at once, with the account's admin page
    with django_capture_on_commit_callbacks(execute=True):
        assert [a.kind for a in raise_beacon_alerts()] == [LEDGER_CHECK_FAILED]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject.endswith(f"CRITICAL {LEDGER_CHECK_FAILED}: ledger.Account #{payable.pk}")
    assert f"{settings.SITE_URL}/admin/ledger/account/{payable.pk}/change/" in mail.outbox[0].body
    assert "the sum of its transfers = €10.00 (difference €0.05)" in mail.outbox[0].body  # money, not \u20ac


def test_a_sound_book_raises_no_beacon(book):
    assert verify_books().ok
    run_command()
    assert not BeaconCount.objects.exists()


def test_beat_runs_the_check_every_hour_and_its_task_raises_the_beacon(book, payable):
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == check_ledger_task.name)
    assert entry["schedule"].minute == {37} and len(entry["schedule"].hour) == 24
    assert check_ledger_task.delay().get() == 0
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_account SET debits_posted = 7 WHERE id = %s", [payable.pk])
    assert check_ledger_task.delay().get() == 2  # the column and the trial balance
    assert BeaconCount.objects.get(kind=LEDGER_CHECK_FAILED).count == 1


@pytest.mark.django_db(transaction=True)
def test_the_check_reads_one_snapshot_while_postings_commit(payable, expense, monkeypatch):
    """A commission posted (and committed) between the check's read of the accounts and its sums
    of the transfers: read at two moments, the account would differ from its transfers, a false
    critical alert every time beat's check met a busy hour."""
    earn(payable, expense, 1_000)
    real_sums = checks.derived_balances

    def sums_after_a_posting_commits():
        # another connection posts and commits between the two reads, every time
        poster = threading.Thread(target=_earn_and_close, args=(payable, expense))
        poster.start()
        poster.join()
        return real_sums()

    monkeypatch.setattr(checks, "derived_balances", sums_after_a_posting_commits)

    # then: verify_books reads one snapshot and finds nothing, however the posting interleaves...
    assert verify_books().findings == []
    assert not BeaconCount.objects.exists()
    # ... where the same statements at READ COMMITTED report the moment between them as a difference
    assert any(f.check == "columns" for f in check_ledger().findings)
    monkeypatch.undo()
    assert check_ledger().ok  # and the books themselves were right all along


def _earn_and_close(payable, expense) -> None:
    try:
        earn(payable, expense, 50)
    finally:
        connections.close_all()
