from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from payouts.models import Payout, PayoutStatus
from tests.factories.affiliates import AffiliateFactory, CommissionFactory


class PayoutFactory(factory.django.DjangoModelFactory):
    """status is protected: pass status="approved" etc. to the constructor (no transition, no audit row)."""

    class Meta:
        model = Payout

    affiliate = factory.SubFactory(AffiliateFactory)
    amount = Decimal("310.00")
    currency = "EUR"
    status = PayoutStatus.REQUESTED


def funded_affiliate(amount: Decimal = Decimal("1000.00"), **affiliate_kwargs):
    """An affiliate with `amount` of approved commissions to draw on, in the payouts' currency (EUR)."""
    affiliate = AffiliateFactory(**affiliate_kwargs)
    CommissionFactory(affiliate=affiliate, amount=amount, currency="EUR", status="approved")
    return affiliate


def long_ago(minutes: int = 24 * 60):
    return timezone.now() - timedelta(minutes=minutes)
