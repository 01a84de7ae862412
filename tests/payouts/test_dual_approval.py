"""Dual approval above PAYOUT_DUAL_APPROVAL_THRESHOLD: two different super-admins, each approval on
the trail, the second through the guarded transition; approvals never carry over to a changed
payout. (The race of two second approvers: tests/payouts/test_races.py.)"""

from decimal import Decimal

import pytest
from django.contrib.admin import helpers
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from affiliates.models import Affiliate, KycStatus
from audit.models import AuditEntry
from core.errors import IllegalTransition, PermissionDenied
from payouts.keys import wise_transaction_id
from payouts.models import Payout, PayoutApproval, PayoutStatus
from payouts.selectors import approval_progress
from payouts.services import approve_payout, dispatch_wise_transfer, reject_payout, retry_payout
from payouts.services.approvals import ALREADY_APPROVED
from payouts.thresholds import approvals_required, dual_approval_thresholds
from tests.factories.accounts import SuperAdminFactory
from tests.factories.affiliates import AffiliateFactory
from tests.factories.payouts import PayoutFactory
from tests.payouts.helpers import api_json, deliver, wise_time

pytestmark = pytest.mark.django_db
LARGE = Decimal("1500.00")  # above the 1000.00 EUR threshold below


@pytest.fixture(autouse=True)
def threshold(settings):
    settings.PAYOUT_DUAL_APPROVAL_THRESHOLD = "EUR=1000.00,USD=1000.00"


@pytest.fixture
def kerem():
    return SuperAdminFactory(username="kerem")


@pytest.fixture
def ana():
    return SuperAdminFactory(username="ana")


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _audit(payout: Payout) -> list[tuple[str, str, str]]:
    rows = AuditEntry.objects.filter(object_id=str(payout.pk)).order_by("id")
    return list(rows.values_list("source", "target", "actor_label"))


def _approvals(payout: Payout) -> list[tuple[str, int, bool]]:
    rows = PayoutApproval.objects.filter(payout=payout).order_by("id")
    return [(a.approver.username, a.attempt, a.voided_at is None) for a in rows]


# --- the threshold ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "amount", "currency", "required"),
    [
        ("EUR=1000.00", "1000.00", "EUR", 1),  # "above": the threshold itself is one approval
        ("EUR=1000.00", "1000.01", "EUR", 2),
        ("EUR=1000.00", "1.00", "JPY", 2),  # no entry, no "*": fail-safe, two for every amount
        ("EUR=1000.00,*=50000", "40000", "JPY", 1),
        ("EUR=1000.00,*=50000", "50001", "JPY", 2),
        ("", "0.01", "EUR", 2),
    ],
)
def test_how_many_approvals_a_payout_needs(settings, setting, amount, currency, required):
    settings.PAYOUT_DUAL_APPROVAL_THRESHOLD = setting
    assert approvals_required(amount=Decimal(amount), currency=currency) == required


@pytest.mark.parametrize("setting", ["EURO=5", "EUR", "EUR=abc", "EUR=-1", "EUR=NaN"])
def test_a_malformed_threshold_is_refused(settings, setting):
    settings.PAYOUT_DUAL_APPROVAL_THRESHOLD = setting
    with pytest.raises(ImproperlyConfigured, match="PAYOUT_DUAL_APPROVAL_THRESHOLD"):
        dual_approval_thresholds()


def test_below_the_threshold_one_approval_suffices(kerem, wise, django_capture_on_commit_callbacks):
    payout = PayoutFactory(amount=Decimal("1000.00"))
    with django_capture_on_commit_callbacks(execute=True):
        response = _login(kerem).post(f"/api/payouts/{payout.pk}/approve/", {}, "application/json")
    assert response.status_code == 200
    assert (api_json(response)["approvals_required"], api_json(response)["approvals"]) == (1, [])
    payout.refresh_from_db()
    assert payout.status == "processing" and not PayoutApproval.objects.exists()


# --- two different super-admins -------------------------------------------------------------------


def test_above_the_threshold_two_different_super_admins_approve(kerem, ana, wise, django_capture_on_commit_callbacks):
    payout = PayoutFactory(amount=LARGE)

    # when: kerem approves: recorded, 202, still requested, nothing sent
    with django_capture_on_commit_callbacks(execute=True) as first_callbacks:
        first = _login(kerem).post(f"/api/payouts/{payout.pk}/approve/", {"reason": "invoice ok"}, "application/json")
    assert first.status_code == 202, first.content
    body = api_json(first)
    assert (body["status"], body["approvals_required"]) == ("requested", 2)
    assert [a["approver"] for a in body["approvals"]] == ["kerem"]
    assert first_callbacks == [] and wise.requests == [] and _audit(payout) == []

    # ... kerem again: refused, nothing recorded
    again = _login(kerem).post(f"/api/payouts/{payout.pk}/approve/", {}, "application/json")
    assert again.status_code == 403
    assert api_json(again) == {"error": "already_approved", "detail": ALREADY_APPROVED}
    assert _approvals(payout) == [("kerem", 1, True)]

    # ... then ana: the second approval is the transition, the dispatch follows
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = _login(ana).post(f"/api/payouts/{payout.pk}/approve/", {"reason": "agreed"}, "application/json")
    assert second.status_code == 200, second.content
    assert (api_json(second)["status"], api_json(second)["reviewed_by"]) == ("approved", "ana")
    assert [a["approver"] for a in api_json(second)["approvals"]] == ["kerem", "ana"]
    assert len(callbacks) == 1
    payout.refresh_from_db()
    assert payout.status == "processing" and payout.reviewed_by == ana
    assert _audit(payout) == [
        ("requested", "approved", "ana"),
        ("approved", "processing", "system:task:dispatch_wise_transfer"),
    ]
    assert _approvals(payout) == [("kerem", 1, True), ("ana", 1, True)]
    assert [a.reason for a in PayoutApproval.objects.order_by("id")] == ["invoice ok", "agreed"]
    assert len(wise.transfers_for(wise_transaction_id(payout_id=payout.pk, attempt=1))) == 1
    assert len(wise.fundings) == 1


def test_put_status_approved_counts_as_an_approval_too(kerem, ana):
    payout = PayoutFactory(amount=LARGE)
    body = {"status": "approved", "expected_status": "requested"}
    first = _login(kerem).put(f"/api/payouts/{payout.pk}/", body, "application/json")
    assert (first.status_code, api_json(first)["status"]) == (202, "requested")
    second = _login(ana).put(f"/api/payouts/{payout.pk}/", body, "application/json")
    assert (second.status_code, api_json(second)["status"]) == (200, "approved")


def test_a_first_approval_is_refused_as_the_transition_would_be(kerem):
    payout = PayoutFactory(amount=LARGE, affiliate=AffiliateFactory(kyc_status=KycStatus.PENDING))
    with pytest.raises(IllegalTransition) as caught:
        approve_payout(payout_id=payout.pk, actor=kerem)
    assert caught.value.code == "kyc_not_verified"
    assert not PayoutApproval.objects.exists()


def test_the_payee_is_never_one_of_the_two(ana):
    boss = SuperAdminFactory(username="boss")
    payout = PayoutFactory(amount=LARGE, affiliate=AffiliateFactory(user=boss))
    approve_payout(payout_id=payout.pk, actor=ana)
    with pytest.raises(PermissionDenied) as caught:
        approve_payout(payout_id=payout.pk, actor=boss)
    assert caught.value.code == "own_payout"
    assert Payout.objects.get(pk=payout.pk).status == "requested"


# --- approvals do not carry over ------------------------------------------------------------------


def test_a_reject_after_a_first_approval_voids_it(kerem, ana, wise):
    payout = PayoutFactory(amount=LARGE)
    approve_payout(payout_id=payout.pk, actor=kerem)

    reject_payout(payout_id=payout.pk, actor=ana, reason="duplicate")

    payout.refresh_from_db()
    assert payout.status == "rejected"
    [approval] = PayoutApproval.objects.all()
    assert approval.voided_at is not None and approval.void_reason == "rejected by ana"
    assert approval_progress(payout).given == 0
    assert _audit(payout) == [("requested", "rejected", "ana")]
    assert wise.requests == []


def test_a_new_recipient_after_a_first_approval_needs_both_approvals_again(kerem, ana, wise):
    payout = PayoutFactory(amount=LARGE)
    approve_payout(payout_id=payout.pk, actor=kerem)
    # the affiliate's bank details change while the payout waits for its second approval
    Affiliate.objects.filter(pk=payout.affiliate_id).update(wise_recipient_id="rcpt-new")

    after_ana = approve_payout(payout_id=payout.pk, actor=ana)  # now only the first of two again

    assert after_ana.status == "requested"
    kerem_old = PayoutApproval.objects.get(approver=kerem)
    assert kerem_old.voided_at is not None and "recipient changed" in kerem_old.void_reason
    done = approve_payout(payout_id=payout.pk, actor=kerem)  # kerem approves what is there now
    assert done.status == "approved"
    live = PayoutApproval.objects.filter(voided_at__isnull=True).order_by("id")
    assert [(a.approver.username, a.wise_recipient_id) for a in live] == [("ana", "rcpt-new"), ("kerem", "rcpt-new")]


def test_a_changed_amount_after_a_first_approval_does_not_carry_it_over(kerem, ana):
    payout = PayoutFactory(amount=LARGE)
    approve_payout(payout_id=payout.pk, actor=kerem)
    Payout.objects.filter(pk=payout.pk).update(amount=Decimal("1600.00"))  # however it happened

    assert approve_payout(payout_id=payout.pk, actor=ana).status == "requested"
    assert "amount changed" in PayoutApproval.objects.get(approver=kerem).void_reason


def test_a_retry_starts_a_new_round_of_approvals(kerem, ana, wise, django_capture_on_commit_callbacks):
    # given: attempt 1 approved by both, then finally failed at Wise
    payout = PayoutFactory(amount=LARGE)
    approve_payout(payout_id=payout.pk, actor=kerem)
    approve_payout(payout_id=payout.pk, actor=ana)
    dispatch_wise_transfer(payout_id=payout.pk)
    payout = Payout.objects.get(pk=payout.pk)
    deliver(Client(), wise, payout.wise_transfer_id, "funds_refunded", wise_time(5))
    assert Payout.objects.get(pk=payout.pk).status == "failed"

    # when: retried (attempt 2), kerem approves again
    retry_payout(payout_id=payout.pk, actor=ana, reason="bank fixed")
    again = approve_payout(payout_id=payout.pk, actor=kerem)

    # then: the first round's approvals do not count for the second attempt
    assert (again.status, again.attempt) == ("requested", 2)
    assert [a.approver.username for a in approval_progress(again).approvals] == ["kerem"]
    with django_capture_on_commit_callbacks(execute=True):
        assert approve_payout(payout_id=payout.pk, actor=ana).status == "approved"
    assert len(wise.transfers_for(wise_transaction_id(payout_id=payout.pk, attempt=2))) == 1


# --- the admin ------------------------------------------------------------------------------------


def test_the_admin_change_page_shows_and_records_both_approvals(kerem, ana, wise, django_capture_on_commit_callbacks):
    payout = PayoutFactory(amount=LARGE)
    url = f"/admin/payouts/payout/{payout.pk}/change/"

    first = _login(kerem).post(url, {"_transition": "approve", "_seen_status": "requested"}, follow=True)
    assert [str(m) for m in first.context["messages"]] == [
        f"#{payout.pk}: approval 1 of 2 recorded (kerem); a second super-admin must approve it."
    ]
    assert "1 of 2 approvals (kerem)" in first.content.decode()
    assert b'value="approve"' not in first.content  # kerem's approval is given: no second button for him

    page = _login(ana).get(url)
    assert b'value="approve"' in page.content
    with django_capture_on_commit_callbacks(execute=True):
        second = _login(ana).post(url, {"_transition": "approve", "_seen_status": "requested"}, follow=True)
    assert [str(m) for m in second.context["messages"]] == [f"#{payout.pk} approved."]
    trail = second.content.decode()
    assert "2 of 2 approvals (kerem, ana)" in trail
    assert trail.count("approval (attempt 1, €1,500.00)") == 2  # both approvals are on the trail
    assert Payout.objects.get(pk=payout.pk).status == "processing"


def test_the_bulk_action_records_a_first_approval_per_row(kerem, wise):
    large, small = PayoutFactory(amount=LARGE), PayoutFactory(amount=Decimal("10.00"))
    response = _login(kerem).post(
        "/admin/payouts/payout/",
        {"action": "approve_selected", helpers.ACTION_CHECKBOX_NAME: [large.pk, small.pk]},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == [
        f"#{large.pk}: approval 1 of 2 recorded (kerem); a second super-admin must approve it.",
        f"#{small.pk} approved.",
    ]
    assert Payout.objects.get(pk=large.pk).status == PayoutStatus.REQUESTED
