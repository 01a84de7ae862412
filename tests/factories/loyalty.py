from datetime import datetime, timedelta

import factory
from django.utils import timezone

from loyalty.anniversaries import add_months
from loyalty.keys import loyalty_code
from loyalty.models import PRO_PLAN, LoyaltyDiscount, Subscription, SubscriptionStatus
from tests.factories.accounts import UserFactory


def due_since(hours: int = 1) -> datetime:
    """A Pro start whose first anniversary passed `hours` ago."""
    return add_months(timezone.now(), -12) - timedelta(hours=hours)


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """An active Pro subscription whose first anniversary is due (by an hour)."""

    class Meta:
        model = Subscription

    user = factory.SubFactory(UserFactory)
    stripe_customer_id = factory.Sequence(lambda n: f"cus_{n:08d}")
    stripe_subscription_id = factory.Sequence(lambda n: f"sub_{n:08d}")
    plan = PRO_PLAN
    status = SubscriptionStatus.ACTIVE
    pro_started_at = factory.LazyFunction(due_since)
    last_event_at = factory.LazyAttribute(lambda s: s.pro_started_at or timezone.now())


class LoyaltyDiscountFactory(factory.django.DjangoModelFactory):
    """status is protected: pass status="applied" etc. to the constructor for other states."""

    class Meta:
        model = LoyaltyDiscount

    subscription = factory.SubFactory(SubscriptionFactory)
    user = factory.LazyAttribute(lambda d: d.subscription.user)
    anniversary = 1
    code = factory.LazyAttribute(lambda d: loyalty_code(user_id=d.user.pk, anniversary=d.anniversary))
