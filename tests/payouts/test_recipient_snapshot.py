"""The approval fixes the Wise recipient; the dispatch pays that one, never the affiliate's live one.

A super-admin who edits Affiliate.wise_recipient_id after a payout was approved must not redirect
its money. Every assertion about the transfer reads the Wise stand-in's own record of the request.
"""

import importlib

import pytest
from django.apps import apps

from audit.models import BeaconCount, CriticalBeacon
from payouts.keys import wise_transaction_id
from payouts.models import Payout, PayoutStatus
from payouts.services import approve_payout, dispatch_wise_transfer, retry_payout
from payouts.services.dispatch import NO_RECIPIENT_SNAPSHOT
from tests.factories.accounts import SuperAdminFactory
from tests.factories.affiliates import AffiliateFactory
from tests.factories.payouts import PayoutFactory

pytestmark = pytest.mark.django_db


def _change_recipient_in_the_admin(client, affiliate, recipient: str) -> None:
    """As a super-admin, through the affiliate's admin change form (the door the issue names)."""
    client.force_login(SuperAdminFactory(username="editor"))
    response = client.post(
        f"/admin/affiliates/affiliate/{affiliate.pk}/change/",
        {"user": affiliate.user_id, "kyc_status": affiliate.kyc_status, "wise_recipient_id": recipient},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    affiliate.refresh_from_db()
    assert affiliate.wise_recipient_id == recipient


def _targets(wise, payout: Payout) -> list[str]:
    """The targetAccount of every transfer request the stand-in received for this payout's attempt."""
    key = wise_transaction_id(payout_id=payout.pk, attempt=payout.attempt)
    requests = wise.requests_to("POST", r"/transfers$")
    return [str(r.body["targetAccount"]) for r in requests if r.body["customerTransactionId"] == key]


def _approve(payout: Payout, reviewer, django_capture_on_commit_callbacks) -> None:
    """Approve, keeping the on-commit dispatch from running: the edit lands between the two."""
    with django_capture_on_commit_callbacks(execute=False):
        approve_payout(payout_id=payout.pk, actor=reviewer, reason="checked")


def test_an_admin_edit_after_approval_does_not_redirect_the_money(wise, client, django_capture_on_commit_callbacks):
    # given: approved while the affiliate's recipient was rcpt-old
    payout = PayoutFactory(affiliate=AffiliateFactory(wise_recipient_id="rcpt-old"))
    _approve(payout, SuperAdminFactory(username="kerem"), django_capture_on_commit_callbacks)
    payout.refresh_from_db()
    assert (payout.status, payout.approved_recipient_id) == (PayoutStatus.APPROVED, "rcpt-old")

    # when: a super-admin changes it in the admin, then the dispatch runs
    _change_recipient_in_the_admin(client, payout.affiliate, "rcpt-new")
    assert dispatch_wise_transfer(payout_id=payout.pk) == "funded"

    # then: Wise was asked to pay the approved recipient, once
    assert _targets(wise, payout) == ["rcpt-old"]
    assert [t["targetAccount"] for t in wise.transfers.values()] == ["rcpt-old"]
    payout.refresh_from_db()
    assert payout.approved_recipient_id == "rcpt-old"


def test_a_retry_after_the_recipient_changed_is_a_new_approval_of_the_new_recipient(
    wise, client, django_capture_on_commit_callbacks
):
    """The rule: a retry goes back to review; the new approval snapshots the recipient as it is
    then. Attempt 1 went (and failed) to the old recipient, attempt 2 goes to the new one."""
    wise.add_fault(method="POST", path=r"/transfers$", mode="status", status=422, times=1)
    reviewer = SuperAdminFactory(username="kerem")
    payout = PayoutFactory(affiliate=AffiliateFactory(wise_recipient_id="rcpt-old"))
    _approve(payout, reviewer, django_capture_on_commit_callbacks)
    assert dispatch_wise_transfer(payout_id=payout.pk) == "failed"
    payout.refresh_from_db()
    assert _targets(wise, payout) == ["rcpt-old"]

    _change_recipient_in_the_admin(client, payout.affiliate, "rcpt-new")
    retry_payout(payout_id=payout.pk, actor=reviewer)
    payout.refresh_from_db()
    assert (payout.status, payout.attempt) == (PayoutStatus.REQUESTED, 2)
    # the retry alone sends nothing: no approval of the new recipient yet
    assert dispatch_wise_transfer(payout_id=payout.pk) == "not_dispatchable"

    _approve(payout, reviewer, django_capture_on_commit_callbacks)
    assert dispatch_wise_transfer(payout_id=payout.pk) == "funded"
    payout.refresh_from_db()
    assert (payout.attempt, payout.approved_recipient_id) == (2, "rcpt-new")
    assert _targets(wise, payout) == ["rcpt-new"]


def test_a_payout_without_a_recipient_snapshot_is_refused_loudly_and_never_sent(wise):
    payout = PayoutFactory(status=PayoutStatus.APPROVED, approved_recipient_id=None)
    assert payout.affiliate.wise_recipient_id  # a live recipient exists: it must not be used

    assert dispatch_wise_transfer(payout_id=payout.pk) == "failed"

    assert wise.requests == []
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.FAILED and "approved Wise recipient" in payout.provider_status
    assert BeaconCount.objects.get(kind=NO_RECIPIENT_SNAPSHOT).count == 1
    assert CriticalBeacon.objects.get(kind=NO_RECIPIENT_SNAPSHOT).details["object_id"] == payout.pk


def test_the_migration_snapshots_in_flight_payouts_with_the_current_recipient():
    migration = importlib.import_module("payouts.migrations.0006_approved_recipient_snapshot")
    affiliate = AffiliateFactory(wise_recipient_id="rcpt-live")
    statuses = [PayoutStatus.APPROVED, PayoutStatus.PROCESSING, PayoutStatus.REQUESTED, PayoutStatus.PAID]
    payouts = [PayoutFactory(affiliate=affiliate, status=s, books=False) for s in statuses]
    Payout.objects.filter(pk__in=[p.pk for p in payouts]).update(approved_recipient_id=None)

    migration.snapshot_in_flight_recipients(apps, None)

    rows = Payout.objects.filter(pk__in=[p.pk for p in payouts])
    snapshots = dict(rows.values_list("status", "approved_recipient_id"))
    assert snapshots == {"approved": "rcpt-live", "processing": "rcpt-live", "requested": None, "paid": None}
