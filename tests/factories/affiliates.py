from decimal import Decimal

import factory

from affiliates.models import Affiliate, Commission, KycStatus
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
