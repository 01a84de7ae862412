"""One authority rule (payouts.authority) through every door: the API, the admin change page, the
bulk action and the services. Super-admins review; a staff user without superuser is refused
everywhere with the same message; nobody reviews a payout they requested or are paid by. And one
validator for the reason: a NUL or another control character, or an over-long reason, is refused
in the admin and the API alike, and nothing is written."""

import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission
from django.forms.models import model_to_dict
from django.test import Client

from audit.models import AuditEntry, BeaconCount
from core.errors import PermissionDenied
from payouts.authority import OWN_PAYOUT, SUPER_ADMINS_ONLY
from payouts.models import Payout, PayoutApproval, PayoutStatus
from payouts.reasons import MAX_REASON_LENGTH
from payouts.services import approve_payout, cancel_at_wise, reject_payout, request_payout, retry_payout
from tests.factories.accounts import SuperAdminFactory, UserFactory
from tests.factories.payouts import PayoutFactory, funded_affiliate
from tests.payouts.helpers import api_json, funded_processing_payout

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/payouts/payout/"


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _change_url(payout) -> str:
    return f"/admin/payouts/payout/{payout.pk}/change/"


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def _snapshot(payout: Payout) -> dict:
    return model_to_dict(Payout.objects.get(pk=payout.pk))


def _nothing_written(payout: Payout, before: dict, wise) -> None:
    assert _snapshot(payout) == before
    assert not AuditEntry.objects.exists() and not PayoutApproval.objects.exists()
    assert wise.requests == []


@pytest.fixture
def super_affiliate():
    """A super-admin who is also an affiliate: the seed incident's user."""
    boss = SuperAdminFactory(username="boss")
    return funded_affiliate(Decimal("1000.00"), user=boss)


@pytest.fixture
def intern():
    """Staff who may look at and change payouts in the admin (every model permission there is),
    but is no superuser: not a reviewer."""
    staff = UserFactory(username="intern", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="payouts"))
    return staff


# --- segregation of duties: the payee and the requester -------------------------------------------


def test_a_super_admin_affiliate_cannot_approve_its_own_payout_through_the_api(super_affiliate, wise):
    # given: the super-admin requested a payout for itself through the API (201)
    boss = _login(super_affiliate.user)
    created = boss.post("/api/payouts/", {"amount": "310.00", "currency": "EUR"}, "application/json")
    assert created.status_code == 201, created.content
    payout = Payout.objects.get(pk=api_json(created)["id"])
    assert payout.requested_by == super_affiliate.user and api_json(created)["requested_by"] == "boss"
    before = _snapshot(payout)

    # when: it approves it, by the action and by PUT
    action = boss.post(f"/api/payouts/{payout.pk}/approve/", {"reason": "mine"}, "application/json")
    put = boss.put(
        f"/api/payouts/{payout.pk}/", {"status": "approved", "expected_status": "requested"}, "application/json"
    )

    # then: 403 own_payout both times, and nothing moved
    for response in (action, put):
        assert response.status_code == 403
        assert api_json(response) == {"error": "own_payout", "detail": OWN_PAYOUT}
    _nothing_written(payout, before, wise)
    assert BeaconCount.objects.get(kind="payout_transition_forbidden").count == 2


def test_a_super_admin_who_requested_for_an_affiliate_cannot_approve_it(wise):
    # given: ana requests on an affiliate's behalf (a super-admin may)
    ana = SuperAdminFactory(username="ana")
    affiliate = funded_affiliate()
    payout = request_payout(affiliate=affiliate, amount=Decimal("100.00"), currency="EUR", actor=ana)
    # then: she may not review it; kerem may
    with pytest.raises(PermissionDenied) as caught:
        approve_payout(payout_id=payout.pk, actor=ana)
    assert (caught.value.code, caught.value.message) == ("own_payout", OWN_PAYOUT)
    assert approve_payout(payout_id=payout.pk, actor=SuperAdminFactory(username="kerem")).status == "approved"


def test_self_approval_is_refused_on_the_admin_change_page(super_affiliate, wise):
    payout = PayoutFactory(affiliate=super_affiliate)
    before = _snapshot(payout)
    boss = _login(super_affiliate.user)

    page = boss.get(_change_url(payout))
    assert page.status_code == 200 and b'name="_transition"' not in page.content  # no button drawn
    response = boss.post(_change_url(payout), {"_transition": "approve", "_seen_status": "requested"}, follow=True)

    assert _messages(response) == [f"#{payout.pk}: {OWN_PAYOUT}"]
    _nothing_written(payout, before, wise)


def test_self_approval_is_refused_by_the_bulk_action(super_affiliate, wise, django_capture_on_commit_callbacks):
    # given: the super-admin's own payout and someone else's, both ticked
    own, other = PayoutFactory(affiliate=super_affiliate), PayoutFactory()
    before = _snapshot(own)

    with django_capture_on_commit_callbacks(execute=True):
        response = _login(super_affiliate.user).post(
            CHANGELIST,
            {"action": "approve_selected", helpers.ACTION_CHECKBOX_NAME: [own.pk, other.pk]},
            follow=True,
        )

    # then: its own is refused with the rule's message, the other approved
    assert _messages(response) == [f"#{own.pk}: {OWN_PAYOUT}", f"#{other.pk} approved."]
    assert _snapshot(own) == before
    assert list(AuditEntry.objects.values_list("object_id", "target", "actor_label").order_by("id")) == [
        (str(other.pk), "approved", "boss"),
        (str(other.pk), "processing", "system:task:dispatch_wise_transfer"),
    ]


@pytest.mark.parametrize("move", ["reject", "cancel", "retry"])
def test_the_payee_takes_no_other_review_decision_on_its_own_payout_either(super_affiliate, move):
    """Refusing self-reject (and cancel, retry) too: see payouts.authority for why."""
    status = {"reject": "requested", "cancel": "approved", "retry": "cancelled"}[move]
    payout = PayoutFactory(affiliate=super_affiliate, status=status)
    before = _snapshot(payout)
    # With a reason, so that only the authority rule can refuse it (a reject needs one).
    response = _login(super_affiliate.user).post(
        f"/api/payouts/{payout.pk}/{move}/", {"reason": "my own call"}, "application/json"
    )
    assert (response.status_code, api_json(response)["error"]) == (403, "own_payout")
    assert _snapshot(payout) == before and not AuditEntry.objects.exists()


def test_the_requester_cannot_cancel_the_transfer_at_wise(wise):
    payout = funded_processing_payout()
    ana = SuperAdminFactory(username="ana")
    Payout.objects.filter(pk=payout.pk).update(requested_by=ana)  # ana had requested it for the affiliate
    requests = len(wise.requests)
    with pytest.raises(PermissionDenied) as caught:
        cancel_at_wise(payout_id=payout.pk, actor=ana)
    assert caught.value.code == "own_payout"
    assert len(wise.requests) == requests  # Wise was never asked


# --- super-admins only: one message at every door -------------------------------------------------


def test_a_staff_user_who_is_no_superuser_is_refused_everywhere_with_the_same_message(intern, wise):
    payout = PayoutFactory()
    before = _snapshot(payout)
    client = _login(intern)

    api = client.post(f"/api/payouts/{payout.pk}/approve/", {}, "application/json")
    put = client.put(
        f"/api/payouts/{payout.pk}/", {"status": "approved", "expected_status": "requested"}, "application/json"
    )
    page = client.get(_change_url(payout))
    change_page = client.post(_change_url(payout), {"_transition": "approve", "_seen_status": "requested"}, follow=True)
    bulk = client.post(
        CHANGELIST, {"action": "approve_selected", helpers.ACTION_CHECKBOX_NAME: [payout.pk]}, follow=True
    )
    with pytest.raises(PermissionDenied) as service:
        approve_payout(payout_id=payout.pk, actor=intern)

    assert api_json(api) == api_json(put) == {"error": "super_admins_only", "detail": SUPER_ADMINS_ONLY}
    assert api.status_code == put.status_code == 403
    assert page.status_code == 200 and b'name="_transition"' not in page.content
    assert _messages(change_page) == _messages(bulk) == [f"#{payout.pk}: {SUPER_ADMINS_ONLY}"]
    assert service.value.message == SUPER_ADMINS_ONLY
    _nothing_written(payout, before, wise)


def test_the_review_permission_is_gone_and_grants_nothing():
    # The model permission that let staff approve in the admin no longer exists (migration 0005).
    assert not Permission.objects.filter(content_type__app_label="payouts", codename="review_payout").exists()


def test_an_inactive_superuser_is_no_reviewer():
    payout = PayoutFactory()
    with pytest.raises(PermissionDenied) as caught:
        reject_payout(payout_id=payout.pk, actor=SuperAdminFactory(is_active=False), reason="duplicate request")
    assert caught.value.message == SUPER_ADMINS_ONLY


def test_allowed_transitions_follow_the_same_rule(super_affiliate):
    own, other = PayoutFactory(affiliate=super_affiliate), PayoutFactory()
    boss = _login(super_affiliate.user)
    listed = {
        p["id"]: p["allowed_transitions"] for p in api_json(boss.get("/api/payouts/?status=requested"))["results"]
    }
    assert listed == {own.pk: [], other.pk: ["approved", "rejected"]}


def test_existing_payouts_get_the_affiliate_as_requester():
    """Migration 0005: rows from before requested_by existed get the affiliate's user."""
    migration = importlib.import_module("payouts.migrations.0005_requested_by_and_approvals")
    old = PayoutFactory(requested_by=None)
    migration.requested_by_the_affiliate(apps, None)
    old.refresh_from_db()
    assert old.requested_by == old.affiliate.user


# --- the reason: one validator, nothing written ---------------------------------------------------

BAD_REASONS = [
    pytest.param("checked\x00invoice", "U+0000", id="nul"),
    pytest.param("bell\x07", "U+0007", id="bell"),
    pytest.param("\x1b[31mred", "U+001B", id="escape"),
    pytest.param("c1\x85", "U+0085", id="c1-control"),
    pytest.param("x" * (MAX_REASON_LENGTH + 1), "at most 2000", id="too-long"),
]


@pytest.mark.parametrize(("reason", "said"), BAD_REASONS)
def test_a_bad_reason_is_400_in_the_api_and_writes_nothing(reason, said, wise):
    payout = PayoutFactory()
    before = _snapshot(payout)
    client = _login(SuperAdminFactory(username="kerem"))

    action = client.post(f"/api/payouts/{payout.pk}/reject/", {"reason": reason}, "application/json")
    body = {"status": "approved", "expected_status": "requested", "reason": reason}
    put = client.put(f"/api/payouts/{payout.pk}/", body, "application/json")

    for response in (action, put):
        assert response.status_code == 400, response.content
        assert api_json(response)["error"] == "invalid_reason" and said in api_json(response)["detail"]
    _nothing_written(payout, before, wise)


@pytest.mark.parametrize(("reason", "said"), BAD_REASONS)
def test_a_bad_reason_is_a_message_on_the_admin_page_and_writes_nothing(reason, said, wise):
    payout = PayoutFactory()
    before = _snapshot(payout)
    client = _login(SuperAdminFactory(username="kerem"))

    response = client.post(
        _change_url(payout), {"_transition": "approve", "_seen_status": "requested", "_reason": reason}, follow=True
    )

    assert response.status_code == 200  # never a 500
    [line] = _messages(response)
    assert line.startswith(f"#{payout.pk}: The reason") and said in line
    _nothing_written(payout, before, wise)


def test_a_reason_that_is_not_text_is_400():
    payout = PayoutFactory()
    response = _login(SuperAdminFactory()).post(f"/api/payouts/{payout.pk}/reject/", {"reason": 7}, "application/json")
    assert (response.status_code, api_json(response)["error"]) == (400, "invalid_reason")


def test_line_breaks_and_tabs_are_kept_and_crlf_becomes_a_newline():
    payout = PayoutFactory()
    client = _login(SuperAdminFactory(username="kerem"))
    client.post(
        _change_url(payout),
        {"_transition": "reject", "_seen_status": "requested", "_reason": " duplicate\r\nof #12\tsee ticket "},
    )
    payout.refresh_from_db()
    assert (payout.status, payout.reason) == (PayoutStatus.REJECTED, "duplicate\nof #12\tsee ticket")
    assert AuditEntry.objects.get().reason == "duplicate\nof #12\tsee ticket"


def test_a_reason_of_exactly_the_limit_is_accepted():
    payout = PayoutFactory(status=PayoutStatus.FAILED)
    done = retry_payout(payout_id=payout.pk, actor=SuperAdminFactory(), reason="y" * MAX_REASON_LENGTH)
    assert done.status == "requested" and len(done.reason) == MAX_REASON_LENGTH
