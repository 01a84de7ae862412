"""The payout review page (issue 16): the facts a reviewer decides on, read from the books, the
field-change trail, the commissions and the earlier payouts; distinct Approve / Reject; a reject
needs a reason on the page and in bulk; a losing reviewer keeps their words; amounts as money."""

import re
from decimal import Decimal
from html import unescape

import pytest
from django.contrib.admin import helpers
from django.forms.models import model_to_dict
from django.test import Client

from affiliates.models import CommissionStatus, KycStatus
from audit.models import AuditEntry
from ledger.models import Transfer
from payouts.models import Payout, PayoutStatus
from payouts.services import approve_payout, reject_payout, request_payout
from tests.factories.accounts import SuperAdminFactory
from tests.factories.affiliates import AffiliateFactory, CommissionFactory
from tests.factories.payouts import PayoutFactory, earned_commission
from tests.payouts.admin_pages import CHANGELIST, change_url, messages_of, signed_in

pytestmark = pytest.mark.django_db


def _section(page: str, section_id: str) -> str:
    """The HTML of one <fieldset id=...> of the page, so an assertion cannot be met elsewhere."""
    start = page.index(f'id="{section_id}"')
    return page[start : page.index("</fieldset>", start)]


def _text(html: str) -> str:
    """The section's words as a reader sees them: no tags, entities decoded, blanks collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def _snapshot(payout: Payout) -> dict:
    return model_to_dict(Payout.objects.get(pk=payout.pk))


@pytest.fixture(autouse=True)
def threshold(settings):
    settings.PAYOUT_DUAL_APPROVAL_THRESHOLD = "EUR=1000.00,USD=1000.00"


@pytest.fixture
def ana() -> Client:
    return signed_in(SuperAdminFactory(username="ana"))


def _scene() -> tuple[Payout, dict[str, Payout]]:
    """An affiliate whose KYC and recipient a super-admin (maria) edited in the admin, with one
    approved and one pending commission, an earlier rejected and an earlier paid payout, and a
    1,500.00 EUR request (two approvals needed) that kerem approved first."""
    affiliate = AffiliateFactory(kyc_status=KycStatus.PENDING, wise_recipient_id="rcpt-old", user__username="lena")
    maria = signed_in(SuperAdminFactory(username="maria"))
    form = {"user": affiliate.user_id, "kyc_status": "verified", "wise_recipient_id": "rcpt-new"}
    edited = maria.post(f"/admin/affiliates/affiliate/{affiliate.pk}/change/", form, HTTP_X_REQUEST_ID="req-kyc-1")
    assert edited.status_code == 302, edited.content.decode()[:2000]
    affiliate.refresh_from_db()
    earned_commission(affiliate, Decimal("2400.00"), "EUR", stripe_invoice_id="in_review_approved")
    CommissionFactory(
        affiliate=affiliate, amount=Decimal("80.00"), currency="EUR", stripe_invoice_id="in_review_pending"
    )
    rejected = request_payout(affiliate=affiliate, amount=Decimal("100.00"), currency="EUR", actor=affiliate.user)
    reject_payout(payout_id=rejected.pk, actor=SuperAdminFactory(username="omar"), reason="Invoice in_7 was refunded")
    paid = PayoutFactory(affiliate=affiliate, amount=Decimal("200.00"), status=PayoutStatus.PAID)
    payout = request_payout(affiliate=affiliate, amount=Decimal("1500.00"), currency="EUR", actor=affiliate.user)
    approve_payout(payout_id=payout.pk, actor=SuperAdminFactory(username="kerem"), reason="invoices match")
    return payout, {"rejected": rejected, "paid": paid}


# --- what the page shows --------------------------------------------------------------------------


def test_the_review_page_shows_the_balance_and_its_ledger_statement(ana):
    payout, _ = _scene()

    page = ana.get(change_url(payout)).content.decode()

    # earned 2,400.00; 200.00 paid out; 1,500.00 held by this request; the rejected 100.00 released
    balance = _section(page, "review-balance")
    assert 'id="balance-available">€700.00<' in balance
    assert 'id="balance-held">€1,500.00<' in balance
    assert 'id="balance-pending">€80.00<' in balance  # the pending commission: not payable yet
    statement = _text(balance[balance.index('id="review-statement"') :])
    for line in (
        "Commission earned Commission #",
        "Payout: amount held",
        "Payout: hold released",
        "Payout: sent",
    ):
        assert line in statement, line
    # the newest entry (this request's hold) first, with the running figures after it
    first_row = _text(re.search(r"<tbody>\s*<tr>(.*?)</tr>", balance[balance.index("review-statement") :], re.S)[1])
    assert first_row.endswith(f"Payout: amount held Payout #{payout.pk} -€1,500.00 €2,200.00 €700.00")
    assert "/admin/ledger/account/" in balance  # the full statement, one click away


def test_the_review_page_shows_kyc_and_recipient_with_who_changed_them_last(ana):
    payout, _ = _scene()

    payee = _text(_section(ana.get(change_url(payout)).content.decode(), "review-payee"))

    pending, verified = KycStatus.PENDING.label, KycStatus.VERIFIED.label
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d"
    assert re.search(rf"KYC status {verified} {when} by maria: {pending} → {verified} \(request req-kyc-1\)", payee)
    assert re.search(rf"Wise recipient rcpt-new {when} by maria: rcpt-old → rcpt-new \(request req-kyc-1\)", payee)


def test_an_affiliate_never_edited_shows_how_its_fields_were_set(ana):
    payout = PayoutFactory(affiliate=AffiliateFactory(wise_recipient_id="rcpt-first"))

    payee = _text(_section(ana.get(change_url(payout)).content.decode(), "review-payee"))

    assert f"set to {KycStatus.VERIFIED.label} when the affiliate was created" in payee
    assert "set to rcpt-first when the affiliate was created" in payee


def test_the_review_page_shows_the_commissions_and_invoices_behind_the_amount(ana):
    payout, _ = _scene()

    commissions = _text(_section(ana.get(change_url(payout)).content.decode(), "review-commissions"))

    assert "Payable (approved): 1, €2,400.00. Not yet payable (pending): 1, €80.00." in commissions
    assert f"in_review_approved {CommissionStatus.APPROVED.label} €2,400.00" in commissions
    assert f"in_review_pending {CommissionStatus.PENDING.label} €80.00" in commissions


def test_the_review_page_shows_earlier_payouts_with_their_outcomes_and_reasons(ana):
    payout, earlier = _scene()

    section = _section(ana.get(change_url(payout)).content.decode(), "review-earlier")
    words = _text(section)

    assert "1 paid, 1 rejected." in words
    assert f"#{earlier['rejected'].pk}" in words and f"€100.00 {PayoutStatus.REJECTED.label} omar" in words
    assert "Invoice in_7 was refunded" in words
    assert f"#{earlier['paid'].pk}" in words and f"€200.00 {PayoutStatus.PAID.label}" in words
    assert f"/admin/payouts/payout/{earlier['rejected'].pk}/change/" in section
    assert f"/admin/payouts/payout/{payout.pk}/change/" not in section  # not itself


def test_the_review_page_shows_the_dual_approval_status_and_who_approved_first(ana):
    payout, _ = _scene()

    page = ana.get(change_url(payout)).content.decode()

    approvals = _text(_section(page, "review-approvals"))
    assert (
        "One super-admin may approve up to €1,000.00; above that, two different super-admins must approve." in approvals
    )
    assert "This payout needs 2 approvals, 1 given." in approvals
    assert re.search(r"kerem at \d{4}-\d\d-\d\d \d\d:\d\d \(first approval\): “invoices match”", approvals)
    # ana may give the second approval: the two decisions, each in its own words and look
    assert re.search(r'<button[^>]*value="approve" class="button decision-approve">Approve payout</button>', page)
    assert re.search(r'<button[^>]*value="reject" class="button decision-reject">Reject payout…</button>', page)


def test_the_page_and_the_list_show_amounts_as_money(ana):
    euros = PayoutFactory(amount=Decimal("12345.60"))
    yen = PayoutFactory(amount=Decimal("5000"), currency="JPY")

    listing = ana.get(CHANGELIST).content.decode()
    page = ana.get(change_url(yen)).content.decode()

    # right-aligned cells (core/admin_money.py), the currency's own decimals, grouped
    assert '<span class="money">€12,345.60</span>' in listing and '<span class="money">¥5,000</span>' in listing
    assert "12345.60" not in listing
    assert '<div class="readonly"><span class="money">¥5,000</span></div>' in page
    assert 'id="balance-held">¥5,000<' in page
    assert "No single-approval limit is set for JPY" in _text(_section(page, "review-approvals"))
    assert euros.pk != yen.pk


# --- a reject needs a reason ----------------------------------------------------------------------


def test_reject_without_a_reason_is_refused_on_the_page_and_changes_nothing(ana, wise):
    payout = PayoutFactory()
    before, transfers = _snapshot(payout), Transfer.objects.count()

    response = ana.post(
        change_url(payout), {"_transition": "reject", "_seen_status": "requested", "_reason": " \r\n "}, follow=True
    )

    assert messages_of(response) == [f"#{payout.pk}: A reason is required to reject: enter it in the reason field."]
    assert _snapshot(payout) == before and payout.status == PayoutStatus.REQUESTED
    assert not AuditEntry.objects.exists() and Transfer.objects.count() == transfers
    # with one, it is rejected and the reason kept
    ana.post(change_url(payout), {"_transition": "reject", "_seen_status": "requested", "_reason": "duplicate"})
    assert Payout.objects.get(pk=payout.pk).status == PayoutStatus.REJECTED
    assert AuditEntry.objects.get().reason == "duplicate"


def test_bulk_reject_asks_for_a_reason_first_and_without_one_changes_nothing(ana, wise):
    first, second = PayoutFactory(amount=Decimal("1234.50")), PayoutFactory()
    selected = {"action": "reject_selected", helpers.ACTION_CHECKBOX_NAME: [first.pk, second.pk]}
    before, transfers = [_snapshot(first), _snapshot(second)], Transfer.objects.count()

    # the action opens an intermediate page that asks for the reason
    asked = ana.post(CHANGELIST, selected)
    assert asked.status_code == 200 and "admin/payouts/payout/reject_selected.html" in [t.name for t in asked.templates]
    form = asked.content.decode()
    assert '<textarea name="reason" id="id_reason" rows="3" cols="60" required>' in form
    assert "€1,234.50" in form and 'name="_confirm"' in form
    assert [_snapshot(first), _snapshot(second)] == before

    # confirmed without a reason: an error, the page again, nothing changed
    refused = ana.post(CHANGELIST, {**selected, "_confirm": "1", "reason": "   "})
    assert refused.status_code == 200 and 'id="id_reason"' in refused.content.decode()
    assert messages_of(refused) == ["A reason is required to reject: enter it in the reason field."]
    assert [_snapshot(first), _snapshot(second)] == before
    assert not AuditEntry.objects.exists() and Transfer.objects.count() == transfers

    # confirmed with one: each row rejected with it
    done = ana.post(CHANGELIST, {**selected, "_confirm": "1", "reason": "Both invoices were refunded"}, follow=True)
    assert messages_of(done) == [f"#{first.pk} rejected.", f"#{second.pk} rejected."]
    assert list(AuditEntry.objects.values_list("target", "reason")) == [("rejected", "Both invoices were refunded")] * 2


def test_bulk_reject_with_a_control_character_in_the_reason_changes_nothing(ana, wise):
    payout = PayoutFactory()
    before = _snapshot(payout)

    response = ana.post(
        CHANGELIST,
        {"action": "reject_selected", helpers.ACTION_CHECKBOX_NAME: [payout.pk], "_confirm": "1", "reason": "a\x00b"},
    )

    [line] = messages_of(response)
    assert line.startswith("The reason contains a control character (U+0000")
    assert ">a\ufffdb</textarea>" in response.content.decode()  # shown back, the bad character marked
    assert _snapshot(payout) == before and not AuditEntry.objects.exists()


# --- a lost race keeps the reviewer's words -------------------------------------------------------


def test_the_losing_reviewers_reason_is_still_in_the_form_after_the_conflict(ana, wise):
    # given: ana has the page open; kerem rejects first
    payout = PayoutFactory()
    assert b'name="_seen_status" value="requested"' in ana.get(change_url(payout)).content
    reject_payout(payout_id=payout.pk, actor=SuperAdminFactory(username="kerem"), reason="duplicate")
    typed = "Refunded invoice in_9 <see ticket 4411> & the bank's note"

    # when: ana rejects on her stale page, with her own reason
    response = ana.post(
        change_url(payout), {"_transition": "reject", "_seen_status": "requested", "_reason": typed}, follow=True
    )

    # then: the conflict banner, and her words still in the reason field
    [line] = messages_of(response)
    assert line.startswith(f"#{payout.pk} already rejected by kerem at ")
    page = response.content.decode()
    assert 'name="_seen_status" value="rejected"' in page
    assert response.context["reason_draft"] == typed
    assert "Refunded invoice in_9 &lt;see ticket 4411&gt; &amp; the bank&#x27;s note</textarea>" in page
    assert AuditEntry.objects.get().reason == "duplicate"  # nothing of hers was written
    # shown once: the next visit starts empty
    assert ana.get(change_url(payout)).context["reason_draft"] == ""
