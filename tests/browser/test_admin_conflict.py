"""Two super-admins, two browsers, one payout: the seed incident clicked through the real admin.

Each reviewer signs in through the admin login form in their own browser context and opens the same
requested payout. The first clicks a button; the second, whose page still says "requested", clicks the
other one. The second must be told who got there first, see the page as it is now, and nothing may be
overwritten: the database, the audit trail and the Wise stand-in's own record are checked at the end.
Celery runs eagerly in tests, so a won approval's Wise dispatch has run before its redirect returns.
"""

import time
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page

from audit.models import AuditEntry, BeaconCount
from payouts.keys import wise_transaction_id
from payouts.models import Payout
from tests.browser.conftest import admin_login, record
from tests.factories.accounts import SuperAdminFactory
from tests.factories.payouts import PayoutFactory

pytestmark = pytest.mark.django_db(transaction=True)
DISPATCHER = "system:task:dispatch_wise_transfer"


def _change_url(payout: Payout) -> str:
    return f"/admin/payouts/payout/{payout.pk}/change/"


def _hhmm(moment) -> str:
    return timezone.localtime(moment).strftime("%H:%M")


def _messages(page: Page) -> list[tuple[str, str]]:
    """The admin's message list as (level, text) pairs, as the browser rendered it."""
    items = page.locator("ul.messagelist li")
    return [(items.nth(i).get_attribute("class") or "", items.nth(i).inner_text()) for i in range(items.count())]


def _seen_status(page: Page) -> str:
    shown = page.locator("#seen-status").inner_text()
    hidden = page.locator("input[type=hidden][name=_seen_status]").get_attribute("value")
    assert shown == hidden, (shown, hidden)  # the page sends back exactly the state it shows
    return hidden


def _button(page: Page, move: str):
    return page.locator(f"button[name=_transition][value={move}]")


# A reject needs a reason (payouts.reasons.clean_decision_reason): the reviewer types one first.
REJECT_REASON = "Invoice in_77 was refunded"


def _click(page: Page, move: str) -> None:
    if move == "reject":
        page.fill("#id__reason", REJECT_REASON)
    with page.expect_navigation():  # the POST, then the redirect back to the change page (PRG)
        _button(page, move).click()


def _open_as_both(new_context, payout: Payout) -> tuple[Page, Page]:
    kerem = admin_login(new_context(), "kerem", "pw", _change_url(payout))
    ana = admin_login(new_context(), "ana", "pw", _change_url(payout))
    for page in (kerem, ana):
        assert _seen_status(page) == "requested"
        assert _button(page, "approve").is_visible() and _button(page, "reject").is_visible()
    return kerem, ana


def _audit_rows(payout: Payout) -> list[tuple[str, str, str, str]]:
    rows = AuditEntry.objects.filter(object_id=str(payout.pk), content_type__model="payout").order_by("id")
    return list(rows.values_list("transition", "source", "target", "actor_label"))


def _history_rows(page: Page) -> list[list[str]]:
    """The change page's read-only audit table (newest first): [transition, from, to, by]."""
    rows = page.locator("#payout-history tbody tr")
    return [rows.nth(i).locator("td").all_inner_texts()[1:5] for i in range(rows.count())]


def _horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the window (0: nothing is cut off or scrolls sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def _decided_at(payout: Payout, transition: str) -> str:
    """HH:MM of the reviewer's audit row: the time the conflict message quotes."""
    row = AuditEntry.objects.get(object_id=str(payout.pk), content_type__model="payout", transition=transition)
    return _hhmm(row.at)


def _race_lost_beacons() -> int:
    return sum(BeaconCount.objects.filter(kind="payout_race_lost").values_list("count", flat=True))


@pytest.fixture
def reviewers() -> None:
    SuperAdminFactory(username="kerem")
    SuperAdminFactory(username="ana")


def test_approve_then_a_stale_reject_shows_the_conflict_naming_the_approver(
    new_context, reviewers, wise, artifacts_dir: Path
):
    # given: kerem and ana both have the requested payout open
    started = time.monotonic()
    payout = PayoutFactory()
    kerem, ana = _open_as_both(new_context, payout)

    # when: kerem approves (the Wise dispatch runs on commit), then ana clicks Reject on her stale page
    _click(kerem, "approve")
    assert _messages(kerem) == [("success", f"#{payout.pk} approved.")]
    assert _seen_status(kerem) == "processing"
    _click(ana, "reject")

    # then: ana is told kerem approved it, and sees the payout as it is now, with no review buttons left
    payout.refresh_from_db()
    expected = f"#{payout.pk} already approved by kerem at {_decided_at(payout, 'approve')}, now processing (refreshed)"
    assert _messages(ana) == [("warning", expected)]
    assert ana.url.endswith(_change_url(payout))
    assert _seen_status(ana) == "processing"
    assert _button(ana, "approve").count() == 0 and _button(ana, "reject").count() == 0
    assert ana.locator("button[name=_cancel_at_wise]").is_visible()  # what is left to do: stop it at Wise
    assert ana.locator("#id__reason").input_value() == REJECT_REASON  # her words are not lost
    assert _history_rows(ana) == [
        ["start_processing", "approved", "processing", DISPATCHER],
        ["approve", "requested", "approved", "kerem"],
    ]
    assert _horizontal_overflow(ana) == 0  # the long request/task ids wrap inside the history table
    ana.screenshot(path=str(artifacts_dir / "admin-conflict.png"), full_page=True)

    # ... and in the database: kerem's approval stands, ana's reject left no trace but its beacon
    assert payout.status == "processing" and payout.reviewed_by.username == "kerem"
    assert _audit_rows(payout) == [
        ("approve", "requested", "approved", "kerem"),
        ("start_processing", "approved", "processing", DISPATCHER),
    ]
    assert _race_lost_beacons() == 1
    # ... and at Wise: exactly one transfer for this payout's attempt, funded once
    [transfer] = wise.transfers.values()
    assert transfer["customerTransactionId"] == wise_transaction_id(payout_id=payout.pk, attempt=1)
    assert str(transfer["id"]) == payout.wise_transfer_id
    assert [f["transferId"] for f in wise.fundings] == [transfer["id"]]
    record(
        f"browser-admin-conflict: approve then stale reject, 1 winner (kerem), conflict shown to ana, "
        f"audit rows 2, Wise transfers 1, fundings 1, {time.monotonic() - started:.1f}s"
    )


def test_reject_then_a_stale_approve_moves_no_money(new_context, reviewers, wise):
    # given
    started = time.monotonic()
    payout = PayoutFactory()
    kerem, ana = _open_as_both(new_context, payout)

    # when: ana rejects, then kerem clicks Approve on his stale page
    _click(ana, "reject")
    assert _messages(ana) == [("success", f"#{payout.pk} rejected.")]
    _click(kerem, "approve")

    # then
    payout.refresh_from_db()
    assert _messages(kerem) == [
        ("warning", f"#{payout.pk} already rejected by ana at {_decided_at(payout, 'reject')} (refreshed)")
    ]
    assert _seen_status(kerem) == "rejected"
    assert _button(kerem, "approve").count() == 0 and _button(kerem, "reject").count() == 0
    assert _history_rows(kerem) == [["reject", "requested", "rejected", "ana"]]
    assert payout.status == "rejected" and payout.reviewed_by.username == "ana"
    assert _audit_rows(payout) == [("reject", "requested", "rejected", "ana")]
    assert _race_lost_beacons() == 1
    assert wise.requests == [] and wise.transfers == {}
    record(
        f"browser-admin-conflict: reject then stale approve, 1 winner (ana), conflict shown to kerem, "
        f"audit rows 1, Wise requests 0, {time.monotonic() - started:.1f}s"
    )
