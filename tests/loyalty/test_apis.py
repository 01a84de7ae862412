"""The super-admin API: list discounts, revoke one; every error is JSON with an error code."""

import pytest
from rest_framework.test import APIClient

from loyalty.models import DiscountStatus, LoyaltyDiscount
from tests.factories.accounts import UserFactory
from tests.factories.loyalty import LoyaltyDiscountFactory

pytestmark = pytest.mark.django_db(transaction=True)
LIST = "/api/loyalty/discounts/"


def revoke_url(discount_id: int) -> str:
    return f"/api/loyalty/discounts/{discount_id}/revoke/"


@pytest.fixture
def api(superuser) -> APIClient:
    client = APIClient()
    client.force_authenticate(superuser)
    return client


def test_super_admins_list_discounts_filtered_by_status(api):
    applied = LoyaltyDiscountFactory(status=DiscountStatus.APPLIED)
    LoyaltyDiscountFactory()

    everything = api.get(LIST).json()
    only_applied = api.get(LIST, {"status": "applied"}).json()

    assert everything["count"] == 2
    assert [d["id"] for d in only_applied["results"]] == [applied.pk]
    assert only_applied["results"][0]["user"] == applied.user.username
    assert only_applied["results"][0]["subscription"] == applied.subscription.stripe_subscription_id


def test_others_are_refused(superuser):
    anonymous = APIClient().get(LIST)
    assert anonymous.status_code in (401, 403) and anonymous.json()["error"] == "not_authenticated"
    member = APIClient()
    member.force_authenticate(UserFactory())
    refused = member.get(LIST)
    assert refused.status_code == 403 and refused.json()["error"] == "permission_denied"
    assert member.post(revoke_url(1), {}, format="json").status_code == 403


def test_revoke_then_revoke_again_is_422(api, stripe_standin):
    discount = LoyaltyDiscountFactory(status=DiscountStatus.APPLIED)

    first = api.post(revoke_url(discount.pk), {"reason": "chargeback"}, format="json")
    again = api.post(revoke_url(discount.pk), {}, format="json")

    assert first.status_code == 200 and first.json()["status"] == "revoked"
    assert again.status_code == 422 and again.json()["error"] == "illegal_transition"
    assert again.json()["from"] == "revoked" and again.json()["allowed"] == []


def test_revoke_from_a_status_no_longer_current_is_409(api, stripe_standin):
    discount = LoyaltyDiscountFactory(status=DiscountStatus.APPLIED)
    stale = api.post(revoke_url(discount.pk), {"expected_status": "pending"}, format="json")
    assert stale.status_code == 409 and stale.json()["error"] == "conflict"
    assert stale.json()["current_status"] == "applied"
    assert LoyaltyDiscount.objects.get().status == DiscountStatus.APPLIED


def test_unknown_ids_and_bad_bodies(api):
    missing = api.post(revoke_url(999_999), {}, format="json")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    discount = LoyaltyDiscountFactory()
    bad = api.post(revoke_url(discount.pk), {"expected_status": "gone"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"] == "validation_error"
    assert LoyaltyDiscount.objects.get().status == DiscountStatus.PENDING


def test_the_schema_documents_the_endpoints_and_their_errors(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    revoke = schema["paths"]["/api/loyalty/discounts/{discount_id}/revoke/"]["post"]
    assert {"200", "400", "401", "403", "404", "409", "422"} <= set(revoke["responses"])
    assert "/api/loyalty/discounts/" in schema["paths"]
