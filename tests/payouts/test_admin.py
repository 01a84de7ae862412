"""The 409-aware admin through django.test.Client: stale clicks, bulk per-row reports, forged POSTs."""

import re

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from audit.models import AuditEntry, BeaconAlert, BeaconCount
from payouts.models import PayoutStatus
from payouts.services import dispatch_wise_transfer, reject_payout
from tests.factories.accounts import SuperAdminFactory, UserFactory
from tests.factories.payouts import PayoutFactory
from tests.payouts.admin_pages import CHANGELIST, change_url, messages_of, signed_in

pytestmark = pytest.mark.django_db


def _hhmm(moment) -> str:
    return timezone.localtime(moment).strftime("%H:%M")


@pytest.fixture
def kerem() -> Client:
    return signed_in(SuperAdminFactory(username="kerem"))


def test_a_stale_click_shows_who_changed_it_and_rerenders_the_current_state(kerem, wise):
    # given: kerem opens the page while the payout is requested
    payout = PayoutFactory()
    page = kerem.get(change_url(payout))
    seen = re.search(rb'name="_seen_status" value="(\w+)"', page.content).group(1).decode()
    assert seen == "requested" and b'value="approve"' in page.content
    # ... and ana rejects it before he clicks
    reject_payout(payout_id=payout.pk, actor=SuperAdminFactory(username="ana"), reason="duplicate request")

    # when: kerem clicks Approve on his stale page
    response = kerem.post(change_url(payout), {"_transition": "approve", "_seen_status": seen}, follow=True)

    # then: a conflict message naming ana, and the page shows the state as it is now
    payout.refresh_from_db()
    assert messages_of(response) == [f"#{payout.pk} already rejected by ana at {_hhmm(payout.reviewed_at)} (refreshed)"]
    assert response.redirect_chain == [(change_url(payout), 302)]
    assert b'name="_seen_status" value="rejected"' in response.content
    assert b'value="approve"' not in response.content
    assert payout.status == "rejected" and payout.reviewed_by.username == "ana"
    assert list(AuditEntry.objects.values_list("target", "actor_label")) == [("rejected", "ana")]
    assert wise.requests == []


def test_a_button_acts_on_the_seen_state_and_shows_the_audit_history(kerem, wise, django_capture_on_commit_callbacks):
    payout = PayoutFactory()
    with django_capture_on_commit_callbacks(execute=True):  # the dispatch runs when the block exits
        kerem.post(
            change_url(payout), {"_transition": "approve", "_seen_status": "requested", "_reason": "checked invoice"}
        )
    response = kerem.get(change_url(payout))
    assert messages_of(response) == [f"#{payout.pk} approved."]
    payout.refresh_from_db()
    assert payout.status == "processing" and payout.reason == "checked invoice"
    assert len(wise.transfers) == len(wise.fundings) == 1
    history = response.content.decode()
    assert "checked invoice" in history and "system:task:dispatch_wise_transfer" in history
    assert 'name="status"' not in history  # status is never an editable field


def test_bulk_approve_reports_each_row(kerem, wise, django_capture_on_commit_callbacks):
    # given: three requested payouts in kerem's list; ana rejects the second one meanwhile
    first, second, third = PayoutFactory(), PayoutFactory(), PayoutFactory()
    reject_payout(payout_id=second.pk, actor=SuperAdminFactory(username="ana"), reason="duplicate request")
    second.refresh_from_db()

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = kerem.post(
            CHANGELIST,
            {"action": "approve_selected", helpers.ACTION_CHECKBOX_NAME: [first.pk, second.pk, third.pk]},
            follow=True,
        )

    # then: one line per row, the lost one names ana; only the two winners reached Wise
    assert messages_of(response) == [
        f"#{first.pk} approved.",
        f"#{second.pk} already rejected by ana at {_hhmm(second.reviewed_at)} (refreshed)",
        f"#{third.pk} approved.",
    ]
    statuses = [p.status for p in (first, second, third) if not p.refresh_from_db()]
    assert statuses == ["processing", "rejected", "processing"]
    assert len(wise.transfers) == len(wise.fundings) == 2
    assert BeaconCount.objects.get(kind="payout_race_lost").count == 1


def test_bulk_reject_reports_refusals_per_row(kerem):
    requested, paid = PayoutFactory(), PayoutFactory(status=PayoutStatus.PAID)
    response = kerem.post(
        f"{CHANGELIST}?status=all",
        # the intermediate page's confirmation, with the reason a reject requires
        {
            "action": "reject_selected",
            helpers.ACTION_CHECKBOX_NAME: [requested.pk, paid.pk],
            "_confirm": "1",
            "reason": "duplicate request",
        },
        follow=True,
    )
    lines = messages_of(response)
    assert lines[0] == f"#{requested.pk} rejected."
    assert lines[1].startswith(f"#{paid.pk} already paid")


def test_a_forged_transition_post_by_staff_without_the_permission_changes_nothing(wise):
    # given: staff who may look at payouts (view + change) but not review them: not a super-admin
    staff = UserFactory(username="intern", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_payout", "change_payout"]))
    client = signed_in(staff)
    payout = PayoutFactory()
    page = client.get(change_url(payout))
    assert page.status_code == 200 and b'name="_transition"' not in page.content  # no buttons drawn

    # when: a hand-made POST of the approve button
    response = client.post(change_url(payout), {"_transition": "approve", "_seen_status": "requested"}, follow=True)

    # then
    assert messages_of(response) == [f"#{payout.pk}: Only super-admins may review payouts."]
    payout.refresh_from_db()
    assert payout.status == "requested" and payout.reviewed_by is None
    assert not AuditEntry.objects.exists() and wise.requests == []
    assert BeaconCount.objects.get(kind="payout_transition_forbidden").count == 1


def test_staff_without_any_payout_permission_gets_403():
    payout = PayoutFactory()
    client = signed_in(UserFactory(is_staff=True))
    assert client.post(change_url(payout), {"_transition": "approve", "_seen_status": "requested"}).status_code == 403
    assert client.post(CHANGELIST, {"action": "approve_selected", "_selected_action": [payout.pk]}).status_code == 403
    payout.refresh_from_db()
    assert payout.status == "requested"


def test_changelist_defaults_to_the_review_queue(kerem):
    requested, paid = PayoutFactory(), PayoutFactory(status=PayoutStatus.PAID)
    default = kerem.get(CHANGELIST)
    assert [p.pk for p in default.context["cl"].result_list] == [requested.pk]
    content = default.content.decode()
    for column in ("KYC", "Status", "Reviewed by", "Age", "Amount"):
        assert column in content
    everything = kerem.get(f"{CHANGELIST}?status=all")
    assert {p.pk for p in everything.context["cl"].result_list} == {requested.pk, paid.pk}


def test_cancel_at_wise_shows_wise_refusal(kerem, wise):
    payout = PayoutFactory(status=PayoutStatus.APPROVED, reviewed_at=timezone.now())
    dispatch_wise_transfer(payout_id=payout.pk)
    payout.refresh_from_db()
    assert b'name="_cancel_at_wise"' in kerem.get(change_url(payout)).content
    wise.advance(payout.wise_transfer_id, "funds_converted")

    response = kerem.post(change_url(payout), {"_cancel_at_wise": "1"}, follow=True)

    [line] = messages_of(response)
    assert line.startswith(f"#{payout.pk}: Wise refused to cancel transfer {payout.wise_transfer_id}")
    assert "transfer.cancellation.not.allowed" in line
    payout.refresh_from_db()
    assert payout.status == "processing"


def test_admin_index_summary_keeps_the_race_figures(kerem):
    PayoutFactory()
    PayoutFactory(amount="45.50")
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    BeaconCount.objects.create(kind="payout_race_lost", hour=hour, count=6)
    BeaconAlert.objects.create(kind="payout_race_lost", hour=hour, count=6, raised_at=timezone.now())

    page = kerem.get("/admin/").content.decode()

    # one summary (config.selectors.attention_summary), no longer two widgets
    assert 'id="attention"' in page and 'id="race-safety"' not in page and 'id="payouts-widget"' not in page
    assert re.search(r'id="attention-payouts">.*?2 payouts: €355.50</td>', page, re.S)
    assert re.search(r'id="attention-lost-races">6<', page)
    widget = page[page.index('id="attention"') :]
    assert "6 &times; Payout race lost" in widget


def test_system_transitions_are_not_admin_buttons(kerem):
    payout = PayoutFactory(status=PayoutStatus.PROCESSING)
    page = kerem.get(change_url(payout)).content
    assert b'name="_transition"' not in page
    response = kerem.post(change_url(payout), {"_transition": "mark_paid", "_seen_status": "processing"}, follow=True)
    assert messages_of(response) == [f"#{payout.pk}: not a review action."]
    payout.refresh_from_db()
    assert payout.status == "processing"
