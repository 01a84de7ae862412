"""An affiliate asks for money: the balance check that two concurrent requests cannot overdraw."""

import re
from decimal import Decimal, InvalidOperation

import structlog
from django.contrib.auth.base_user import AbstractBaseUser

from affiliates.models import Affiliate
from core.actors import Actor, actor_label
from core.errors import BusinessRuleViolation, PermissionDenied, ValidationError
from core.transactions import atomic
from payouts.errors import PayoutErrorCode
from payouts.models import Payout
from payouts.selectors import available_balance

logger = structlog.get_logger(__name__)
CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_AMOUNT = Decimal("9999999999.99")  # max_digits=12, decimal_places=2


def request_payout(*, affiliate: Affiliate, amount: Decimal, currency: str, actor: Actor) -> Payout:
    """Create a `requested` payout for `affiliate` if its available balance covers `amount`.

    Safety: the affiliate row lock (SELECT ... FOR UPDATE, taken here and nowhere else in this app)
    serialises concurrent requests of one affiliate, so the second computes its balance only after
    the first has committed its payout: two requests can never together overdraw. Raises
    ValidationError (bad amount or currency), PermissionDenied (another affiliate's actor) and
    BusinessRuleViolation("insufficient_balance").
    """
    amount = _clean_amount(amount)
    currency = _clean_currency(currency)
    if isinstance(actor, AbstractBaseUser) and not actor.is_superuser and actor.pk != affiliate.user_id:
        raise PermissionDenied("An affiliate may request payouts only for itself.")
    with atomic():
        locked = Affiliate.objects.select_for_update().get(pk=affiliate.pk)
        balance = available_balance(affiliate=locked, currency=currency)
        if amount > balance:
            raise BusinessRuleViolation(
                f"Requested {amount} {currency} exceeds the available balance of {balance}.",
                code=PayoutErrorCode.INSUFFICIENT_BALANCE,
                available_balance=str(balance),
                requested=str(amount),
            )
        payout = Payout.objects.create(affiliate=locked, amount=amount, currency=currency)
    logger.info("payout_requested", payout_id=payout.pk, amount=str(amount), actor=actor_label(actor))
    return payout


def _clean_amount(amount: Decimal | str) -> Decimal:
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError(f"'{amount}' is not an amount.", code=PayoutErrorCode.INVALID_AMOUNT) from exc
    if not value.is_finite() or value <= 0 or value > MAX_AMOUNT or value != value.quantize(Decimal("0.01")):
        raise ValidationError(
            "The amount must be positive, with at most 2 decimal places.", code=PayoutErrorCode.INVALID_AMOUNT
        )
    return value.quantize(Decimal("0.01"))


def _clean_currency(currency: str) -> str:
    if not isinstance(currency, str) or not CURRENCY.match(currency):
        raise ValidationError(
            f"'{currency}' is not an ISO 4217 currency code (e.g. EUR).", code=PayoutErrorCode.INVALID_CURRENCY
        )
    return currency
