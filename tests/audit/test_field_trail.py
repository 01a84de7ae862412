"""The field-change trail (audit.field_trail): every money-relevant field change is recorded by a
database trigger, with who, when, old -> new and the request or task id, whatever door made it.

Each field the issue names is edited here through the door a super-admin would use (the admin
form), and the trail row is read back; then the doors nobody should use (queryset.update, raw SQL)
are shown to be recorded too, the secret never stored, and the rows impossible to edit.
"""

from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from affiliates.models import Affiliate, Commission, KycStatus, Tier
from audit.models import FieldChange
from audit.selectors import field_changes_for, last_field_change
from core.context import acting_system, correlation_id
from pos_sync.models import PosConnection
from tests.affiliates.events import invoice_paid
from tests.factories.accounts import SuperAdminFactory
from tests.factories.affiliates import AffiliateFactory, ReferralFactory, TierFactory
from tests.factories.pos_sync import PosConnectionFactory
from tests.stripe_signing import post_stripe_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(client):
    user = SuperAdminFactory(username="editor")
    client.force_login(user)
    return user


def _post(client, url: str, data: dict) -> str:
    response = client.post(url, data, HTTP_X_REQUEST_ID="req-trail-test")
    assert response.status_code == 302, response.content.decode()[:3000]
    return response["X-Request-ID"]


def _only_change(obj, field: str) -> FieldChange:
    changes = list(field_changes_for(obj, field=field).filter(operation="update"))
    assert len(changes) == 1, [str(c) for c in changes]
    return changes[0]


def _assert_by(change: FieldChange, editor, old, new) -> None:
    assert (change.old_value, change.new_value) == (old, new)
    assert (change.actor_id, change.actor_label) == (editor.pk, "editor")
    assert change.correlation_id == "req-trail-test"
    assert change.at is not None


def _affiliate_form(affiliate: Affiliate, **changes) -> dict:
    return {
        "user": affiliate.user_id,
        "kyc_status": affiliate.kyc_status,
        "wise_recipient_id": affiliate.wise_recipient_id,
    } | changes


def test_kyc_status_edited_in_the_admin_is_recorded(client, editor):
    affiliate = AffiliateFactory(kyc_status=KycStatus.PENDING)
    _post(
        client, f"/admin/affiliates/affiliate/{affiliate.pk}/change/", _affiliate_form(affiliate, kyc_status="verified")
    )
    _assert_by(_only_change(affiliate, "kyc_status"), editor, "pending", "verified")


def test_wise_recipient_edited_in_the_admin_is_recorded(client, editor):
    affiliate = AffiliateFactory(wise_recipient_id="rcpt-old")
    _post(
        client,
        f"/admin/affiliates/affiliate/{affiliate.pk}/change/",
        _affiliate_form(affiliate, wise_recipient_id="rcpt-new"),
    )
    _assert_by(_only_change(affiliate, "wise_recipient_id"), editor, "rcpt-old", "rcpt-new")
    assert last_field_change(affiliate, "wise_recipient_id").new_value == "rcpt-new"
    # A save that changes nothing else records nothing else.
    assert not field_changes_for(affiliate, field="kyc_status").filter(operation="update").exists()


def test_tier_definition_edited_in_the_admin_is_recorded(client, editor):
    Tier.objects.all().delete()
    tier = TierFactory(name="Gold", commission_rate=30, threshold=Decimal("5000.00"))
    _post(
        client,
        f"/admin/affiliates/tier/{tier.pk}/change/",
        {"name": "Gold", "commission_rate": 35, "threshold": "7500.00"},
    )
    _assert_by(_only_change(tier, "commission_rate"), editor, "30", "35")
    _assert_by(_only_change(tier, "threshold"), editor, "5000.00", "7500.00")


def test_a_tier_created_and_deleted_in_the_admin_is_recorded(client, editor):
    Tier.objects.all().delete()
    _post(client, "/admin/affiliates/tier/add/", {"name": "Platinum", "commission_rate": 45, "threshold": "20000.00"})
    tier = Tier.objects.get(name="Platinum")
    created = {c.field: c.new_value for c in field_changes_for(tier).filter(operation="insert")}
    assert created == {"name": "Platinum", "commission_rate": "45", "threshold": "20000.00"}

    _post(client, f"/admin/affiliates/tier/{tier.pk}/delete/", {"post": "yes"})
    deleted = field_changes_for(tier).filter(operation="delete")
    assert {(c.field, c.old_value, c.new_value, c.actor_label) for c in deleted} == {
        ("name", "Platinum", None, "editor"),
        ("commission_rate", "45", None, "editor"),
        ("threshold", "20000.00", None, "editor"),
    }


def test_referral_ownership_edited_in_the_admin_is_recorded(client, editor):
    referral = ReferralFactory()
    new_owner = AffiliateFactory()
    _post(
        client,
        f"/admin/affiliates/referral/{referral.pk}/change/",
        {"affiliate": new_owner.pk, "stripe_customer_id": referral.stripe_customer_id},
    )
    _assert_by(_only_change(referral, "affiliate"), editor, str(referral.affiliate_id), str(new_owner.pk))


def test_pos_credentials_changed_in_the_admin_are_recorded_without_their_value(client, editor):
    pos = PosConnectionFactory(access_token="sq0atp-old-secret")
    _post(
        client,
        f"/admin/pos_sync/posconnection/{pos.pk}/change/",
        {
            "restaurant_name": pos.restaurant_name,
            "provider": pos.provider,
            "location_id": pos.location_id,
            "is_active": "on",
            "new_access_token": "sq0atp-new-secret",
        },
    )
    change = _only_change(pos, "access_token")
    _assert_by(change, editor, None, None)
    assert change.value_hidden
    # Neither value is anywhere in the trail.
    stored = " ".join(f"{c.old_value} {c.new_value}" for c in FieldChange.objects.all())
    assert "secret" not in stored


def test_payout_creation_through_the_api_is_recorded_with_its_requester(client):
    from tests.factories.payouts import funded_affiliate

    affiliate = funded_affiliate(Decimal("500.00"))
    client.force_login(affiliate.user)
    response = client.post(
        "/api/payouts/",
        {"amount": "120.00", "currency": "EUR"},
        content_type="application/json",
        HTTP_X_REQUEST_ID="req-payout-1",
    )
    assert response.status_code == 201, response.content
    payout_id = response.json()["id"]
    rows = FieldChange.objects.filter(model="payouts.payout", object_id=str(payout_id), operation="insert")
    assert {r.field: r.new_value for r in rows} == {
        "affiliate": str(affiliate.pk),
        "amount": "120.00",
        "currency": "EUR",
        "requested_by": str(affiliate.user_id),
    }
    assert {(r.actor_id, r.actor_label, r.correlation_id) for r in rows} == {
        (affiliate.user_id, affiliate.user.get_username(), "req-payout-1")
    }
    # The amount carries its currency, so the trail shows money on its own.
    assert {r.field: r.currency for r in rows}["amount"] == "EUR"
    client.force_login(SuperAdminFactory(username="auditor"))
    assert "Set to €120.00" in client.get("/admin/audit/fieldchange/").content.decode()


def test_commission_creation_by_a_stripe_webhook_is_recorded(client, django_capture_on_commit_callbacks):
    referral = ReferralFactory(stripe_customer_id="cus_trail", affiliate__commission_rate=20)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_stripe_event(client, invoice_paid("evt_trail", invoice_id="in_trail", customer="cus_trail"))
    assert response.status_code == 200, response.content
    commission = Commission.objects.get(stripe_invoice_id="in_trail")
    rows = field_changes_for(commission).filter(operation="insert")
    assert {r.field: r.new_value for r in rows} == {
        "affiliate": str(referral.affiliate_id),
        "stripe_invoice_id": "in_trail",
        "amount": str(commission.amount),
        "currency": commission.currency,
        "rate": "20",
    }
    # Nobody signed in: the trail names the webhook request and carries its request id.
    assert {(r.actor_id, r.actor_label) for r in rows} == {(None, "anonymous POST /api/stripe/webhook/")}
    assert all(r.correlation_id for r in rows)


def test_a_task_is_named_as_the_actor():
    affiliate = AffiliateFactory(kyc_status=KycStatus.PENDING)
    token, cid = acting_system.set("task:affiliates.evaluate_tier"), correlation_id.set("task-abc")
    try:
        Affiliate.objects.filter(pk=affiliate.pk).update(kyc_status=KycStatus.VERIFIED)
    finally:
        acting_system.reset(token)
        correlation_id.reset(cid)
    change = _only_change(affiliate, "kyc_status")
    assert (change.actor_id, change.actor_label, change.correlation_id) == (
        None,
        "system:task:affiliates.evaluate_tier",
        "task-abc",
    )


def test_raw_sql_that_bypasses_every_service_is_still_recorded():
    affiliate = AffiliateFactory(wise_recipient_id="rcpt-1")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE affiliates_affiliate SET wise_recipient_id = 'rcpt-evil' WHERE id = %s", [affiliate.pk])
    change = _only_change(affiliate, "wise_recipient_id")
    assert (change.old_value, change.new_value, change.actor_label) == ("rcpt-1", "rcpt-evil", "")


def test_recorded_changes_cannot_be_edited_or_deleted():
    affiliate = AffiliateFactory(kyc_status=KycStatus.PENDING)
    Affiliate.objects.filter(pk=affiliate.pk).update(kyc_status=KycStatus.VERIFIED)
    change = _only_change(affiliate, "kyc_status")
    for statement in (
        "UPDATE audit_fieldchange SET new_value = 'pending' WHERE id = %s",
        "DELETE FROM audit_fieldchange WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [change.pk])
    assert FieldChange.objects.get(pk=change.pk).new_value == "verified"


def test_a_status_transition_pays_nothing_for_the_trail(client):
    """The guarded transitions never SET a tracked column: no trigger row, no context statement."""
    affiliate = AffiliateFactory()
    token = correlation_id.set("req-hot")
    try:
        with CaptureQueriesContext(connection) as queries:
            Affiliate.objects.filter(pk=affiliate.pk).update(commission_version=7)
    finally:
        correlation_id.reset(token)
    assert [q["sql"] for q in queries if "set_config" in q["sql"]] == []
    assert not field_changes_for(affiliate).filter(operation="update").exists()


def test_a_tracked_change_sends_its_context_in_its_own_transaction_once():
    affiliate = AffiliateFactory(kyc_status=KycStatus.PENDING)
    token = correlation_id.set("req-ctx")
    try:
        with CaptureQueriesContext(connection) as queries:
            Affiliate.objects.filter(pk=affiliate.pk).update(kyc_status=KycStatus.REJECTED)
    finally:
        correlation_id.reset(token)
    assert len([q for q in queries if "set_config" in q["sql"]]) == 1
    assert _only_change(affiliate, "kyc_status").correlation_id == "req-ctx"


def test_the_field_change_list_links_each_row_to_its_record_and_hides_secrets(client, editor):
    affiliate = AffiliateFactory(wise_recipient_id="rcpt-old")
    pos = PosConnectionFactory(access_token="sq0atp-list-secret")
    _post(
        client,
        f"/admin/affiliates/affiliate/{affiliate.pk}/change/",
        _affiliate_form(affiliate, wise_recipient_id="rcpt-new"),
    )
    PosConnection.objects.filter(pk=pos.pk).update(access_token="sq0atp-other-secret")

    page = client.get("/admin/audit/fieldchange/").content.decode()

    assert f'href="/admin/affiliates/affiliate/{affiliate.pk}/change/"' in page
    assert "rcpt-old &rarr; rcpt-new" in page
    assert f'href="/admin/auth/user/{editor.pk}/change/"' in page
    assert "its value is never recorded" in page
    assert "secret" not in page.replace("a secret: its value", "")
    assert "Not known: made directly in the database" in page
    # Read-only: no add button, and a row's page cannot be posted to.
    row = FieldChange.objects.filter(field="wise_recipient_id", operation="update").get()
    assert client.post(f"/admin/audit/fieldchange/{row.pk}/change/", {}).status_code == 403
