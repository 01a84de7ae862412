"""Super-admin screens: superseded events visible, rates and statuses changed only through services."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from affiliates.models import Affiliate, Commission, Tier
from audit.models import AuditEntry
from tests.factories.accounts import UserFactory
from tests.factories.affiliates import AffiliateFactory, CommissionFactory, TierEventFactory

pytestmark = pytest.mark.django_db


def test_super_admin_sees_superseded_tier_events(admin_client):
    active = TierEventFactory(cause="the real promotion")
    TierEventFactory(affiliate=active.affiliate, cause="the duplicate copy", status="superseded")

    page = admin_client.get("/admin/affiliates/tierevent/").content.decode()
    only_superseded = admin_client.get("/admin/affiliates/tierevent/?status__exact=superseded").content.decode()

    assert "the real promotion" in page and "the duplicate copy" in page
    assert "the duplicate copy" in only_superseded and "the real promotion" not in only_superseded


def test_staff_without_super_admin_rights_cannot_see_tier_events(client):
    staff = UserFactory(username="staffer", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_tierevent"))
    client.force_login(staff)
    assert client.get("/admin/affiliates/tierevent/").status_code == 403


def test_commission_rate_is_read_only_in_the_admin(admin_client):
    affiliate = AffiliateFactory(commission_rate=20)
    response = admin_client.post(
        f"/admin/affiliates/affiliate/{affiliate.pk}/change/",
        {"user": affiliate.user_id, "commission_rate": 90, "kyc_status": "verified", "wise_recipient_id": "r-1"},
    )
    assert response.status_code == 302
    affiliate.refresh_from_db()
    assert (affiliate.commission_rate, affiliate.wise_recipient_id) == (20, "r-1")


def test_reverse_action_goes_through_the_guarded_transition_and_reports_conflicts(admin_client):
    live, already = CommissionFactory(), CommissionFactory(status="reversed")

    response = admin_client.post(
        "/admin/affiliates/commission/",
        {"action": "reverse_selected", "_selected_action": [live.pk, already.pk]},
        follow=True,
    )

    messages = [str(m) for m in response.context["messages"]]
    assert any("1 commission(s) reversed" in m for m in messages)
    assert any(f"Commission #{already.pk}" in m for m in messages)
    assert dict(Commission.objects.values_list("pk", "status")) == {live.pk: "reversed", already.pk: "reversed"}
    entry = AuditEntry.objects.get()
    assert (entry.object_id, entry.target, entry.actor_label) == (str(live.pk), "reversed", "admin")


def test_approve_action_and_reevaluate_action(admin_client):
    commission = CommissionFactory(amount=Decimal("1600.00"), affiliate__commission_rate=20)

    admin_client.post(
        "/admin/affiliates/commission/", {"action": "approve_selected", "_selected_action": [commission.pk]}
    )
    admin_client.post(
        "/admin/affiliates/affiliate/", {"action": "reevaluate_tier", "_selected_action": [commission.affiliate_id]}
    )

    assert Commission.objects.get().status == "approved"
    assert Affiliate.objects.get().commission_rate == 25
    assert set(AuditEntry.objects.values_list("transition", "actor_label")) == {
        ("approve", "admin"),
        ("promote", "admin"),
    }


def test_tiers_are_editable_and_must_keep_higher_thresholds_paying_more(admin_client):
    gold = Tier.objects.get(name="Gold")
    ok = admin_client.post(
        f"/admin/affiliates/tier/{gold.pk}/change/", {"name": "Gold", "commission_rate": 26, "threshold": "2000.00"}
    )
    bad = admin_client.post(
        "/admin/affiliates/tier/add/", {"name": "Silver", "commission_rate": 19, "threshold": "800.00"}
    )

    assert ok.status_code == 302
    assert Tier.objects.get(name="Gold").threshold == Decimal("2000.00")
    assert bad.status_code == 200 and "must have a higher commission rate" in bad.content.decode()
    assert not Tier.objects.filter(name="Silver").exists()


def test_admin_changelists_render(admin_client):
    CommissionFactory()
    TierEventFactory()
    for model in ("affiliate", "referral", "commission", "tier", "tierevent"):
        assert admin_client.get(f"/admin/affiliates/{model}/").status_code == 200, model
