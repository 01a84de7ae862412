"""Demo payouts: a small review queue for the verified demo affiliates (idempotent)."""

from decimal import Decimal
from io import TextIOBase

from django.conf import settings

from affiliates.models import Affiliate, KycStatus
from core.errors import BusinessRuleViolation
from payouts.models import Payout
from payouts.selectors import available_balance
from payouts.services import request_payout

DEMO_AMOUNTS = [Decimal("310.00"), Decimal("45.50")]


def seed(*, stdout: TextIOBase) -> None:
    """Requests demo payouts through the service (so the balance rule holds) for each verified
    affiliate that has none yet; affiliates without approved commissions are skipped."""
    created = 0
    affiliates = Affiliate.objects.filter(kyc_status=KycStatus.VERIFIED).select_related("user").order_by("pk")
    for affiliate in affiliates:
        if Payout.objects.filter(affiliate=affiliate).exists():
            continue
        for amount in DEMO_AMOUNTS:
            if amount > available_balance(affiliate=affiliate):
                continue
            try:
                request_payout(
                    affiliate=affiliate, amount=amount, currency=settings.AFFILIATE_CURRENCY, actor=affiliate.user
                )
            except BusinessRuleViolation:
                continue
            created += 1
    stdout.write(f"{created} demo payouts requested")
