from decimal import Decimal

import factory

from affiliates.models import Affiliate, Commission, KycStatus, Referral, Tier, TierEvent
from tests.factories.accounts import UserFactory


class AffiliateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Affiliate

    user = factory.SubFactory(UserFactory)
    commission_rate = 20
    kyc_status = KycStatus.VERIFIED
    wise_recipient_id = factory.Sequence(lambda n: f"rcpt-{n}")


class CommissionFactory(factory.django.DjangoModelFactory):
    """status is protected: create approved ones with status="approved" (the constructor may set it)."""

    class Meta:
        model = Commission

    affiliate = factory.SubFactory(AffiliateFactory)
    stripe_invoice_id = factory.Sequence(lambda n: f"in_{n:08d}")
    stripe_event_id = factory.Sequence(lambda n: f"evt_{n:08d}")
    amount = Decimal("100.00")
    currency = "USD"
    rate = 20


class ReferralFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Referral

    affiliate = factory.SubFactory(AffiliateFactory)
    stripe_customer_id = factory.Sequence(lambda n: f"cus_{n:08d}")


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tier
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"Tier {n}")
    commission_rate = factory.Sequence(lambda n: 30 + n)
    threshold = factory.Sequence(lambda n: Decimal(5000 + n * 1000))


class TierEventFactory(factory.django.DjangoModelFactory):
    """status is protected: pass status="superseded" to the constructor for an already superseded row."""

    class Meta:
        model = TierEvent

    affiliate = factory.SubFactory(AffiliateFactory)
    from_rate = 20
    to_rate = 25
    tier_name = "Gold"
    cause = "factory"
