"""The super-admin screens: a read-only changelist with filters and search, and a revoke action
that goes through the guarded transition."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from audit.models import AuditEntry
from loyalty.models import DiscountStatus
from tests.factories.accounts import UserFactory
from tests.factories.loyalty import LoyaltyDiscountFactory

pytestmark = pytest.mark.django_db(transaction=True)
CHANGELIST = reverse("admin:loyalty_loyaltydiscount_changelist")


@pytest.fixture
def admin_client_for(client, superuser):
    client.force_login(superuser)
    return client


def test_changelist_filters_and_searches(admin_client_for):
    applied = LoyaltyDiscountFactory(status=DiscountStatus.APPLIED, stripe_promotion_code_id="promo_a")
    pending = LoyaltyDiscountFactory(anniversary=2)

    page = admin_client_for.get(CHANGELIST)
    assert page.status_code == 200 and applied.code in page.content.decode() and pending.code in page.content.decode()
    only_applied = admin_client_for.get(CHANGELIST, {"status__exact": "applied"}).content.decode()
    assert applied.code in only_applied and pending.code not in only_applied
    second_year = admin_client_for.get(CHANGELIST, {"anniversary": "2"}).content.decode()
    assert pending.code in second_year and applied.code not in second_year
    by_user = admin_client_for.get(CHANGELIST, {"q": pending.user.username}).content.decode()
    assert pending.code in by_user and applied.code not in by_user
    by_code = admin_client_for.get(CHANGELIST, {"q": applied.code}).content.decode()
    assert applied.code in by_code and pending.code not in by_code


def test_status_is_never_an_editable_field(admin_client_for):
    discount = LoyaltyDiscountFactory()
    page = admin_client_for.get(reverse("admin:loyalty_loyaltydiscount_change", args=[discount.pk]))
    assert page.status_code == 200
    assert 'name="status"' not in page.content.decode()
    posted = admin_client_for.post(
        reverse("admin:loyalty_loyaltydiscount_change", args=[discount.pk]), {"status": "applied"}
    )
    assert posted.status_code == 403
    discount.refresh_from_db()
    assert discount.status == DiscountStatus.PENDING


def test_the_revoke_action_revokes_through_the_transition_and_deactivates_at_stripe(
    admin_client_for, superuser, stripe_standin
):
    code = stripe_standin.seed_promotion_code(code="LOYALTY9Y1", customer="cus_9")
    applied = LoyaltyDiscountFactory(status=DiscountStatus.APPLIED, stripe_promotion_code_id=code["id"])
    already = LoyaltyDiscountFactory(status=DiscountStatus.REVOKED)

    response = admin_client_for.post(
        CHANGELIST, {"action": "revoke", "_selected_action": [applied.pk, already.pk]}, follow=True
    )

    texts = [m.message for m in get_messages(response.wsgi_request)]
    assert f"#{already.pk} is already revoked." in texts
    assert "1 discount(s) revoked; their codes are deactivated at Stripe." in texts
    applied.refresh_from_db()
    assert applied.status == DiscountStatus.REVOKED and applied.stripe_closed_at is not None
    assert stripe_standin.promotion_codes[code["id"]]["active"] is False
    entry = AuditEntry.objects.get(object_id=str(applied.pk))
    assert (entry.source, entry.target, entry.actor_label) == ("applied", "revoked", superuser.username)


def test_staff_who_are_not_super_admins_see_nothing(client):
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(reverse("admin:loyalty_subscription_changelist")).status_code == 403


def test_the_subscription_mirror_is_read_only(admin_client_for):
    from tests.factories.loyalty import SubscriptionFactory

    subscription = SubscriptionFactory()
    page = admin_client_for.get(reverse("admin:loyalty_subscription_changelist"))
    assert page.status_code == 200 and subscription.stripe_subscription_id in page.content.decode()
    assert admin_client_for.get(reverse("admin:loyalty_subscription_add")).status_code == 403
