"""An affiliate asks for money: the payout row and its reservation in the books, in one transaction."""

import re
from decimal import Decimal, InvalidOperation

import structlog
from django.contrib.auth.base_user import AbstractBaseUser

from affiliates.models import Affiliate
from core.actors import Actor, actor_label, actor_user
from core.currencies import exponent, known_currencies
from core.errors import PermissionDenied, ValidationError
from core.transactions import atomic
from payouts.errors import PayoutErrorCode
from payouts.models import Payout
from payouts.services.books import reserve_payout

logger = structlog.get_logger(__name__)
CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_AMOUNT = Decimal("9999999999.99")  # max_digits=12, decimal_places=2
STORED_DECIMALS = 2  # Payout.amount's decimal_places


def request_payout(*, affiliate: Affiliate, amount: Decimal, currency: str, actor: Actor) -> Payout:
    """Create a `requested` payout for `affiliate` and reserve its amount in the books.

    Safety: the ledger's reservation is ONE guarded UPDATE of the affiliate's payable account
    (credits_posted - debits_posted - debits_pending >= amount); concurrent requests queue on that
    row and PostgreSQL re-checks the condition on the committed version, so no sequence of
    requests can hold more than was earned. No affiliate row lock, no read-then-write. A refusal
    rolls the payout row back with it. Raises ValidationError (bad amount or currency: nothing
    written), PermissionDenied (another affiliate's actor) and
    BusinessRuleViolation("insufficient_balance", available_balance=<major units>). The actor is
    stored as `requested_by`: payouts.authority never lets the requester review it.
    """
    currency = _clean_currency(currency)
    amount = _clean_amount(amount, currency)
    if isinstance(actor, AbstractBaseUser) and not actor.is_superuser and actor.pk != affiliate.user_id:
        raise PermissionDenied("An affiliate may request payouts only for itself.")
    with atomic():
        payout = Payout.objects.create(
            affiliate=affiliate, amount=amount, currency=currency, requested_by=actor_user(actor)
        )
        reserve_payout(payout)
    logger.info("payout_requested", payout_id=payout.pk, amount=str(amount), actor=actor_label(actor))
    return payout


def _clean_amount(amount: Decimal | str, currency: str) -> Decimal:
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError(f"'{amount}' is not an amount.", code=PayoutErrorCode.INVALID_AMOUNT) from exc
    if not value.is_finite() or value <= 0:
        raise ValidationError("The amount must be positive.", code=PayoutErrorCode.INVALID_AMOUNT)
    if value > MAX_AMOUNT:
        raise ValidationError(
            f"The amount exceeds the largest payout, {MAX_AMOUNT}.",
            code=PayoutErrorCode.AMOUNT_TOO_LARGE,
            maximum=str(MAX_AMOUNT),
            currency=currency,
        )
    # The currency's minor unit (JPY 0, EUR 2) from the one currency table, capped by what the
    # payout row stores: 1.001 EUR or 10.5 JPY is an error, never a rounding.
    decimals = min(exponent(currency), STORED_DECIMALS)
    quantum = Decimal(1).scaleb(-decimals)
    if value != value.quantize(quantum):
        raise ValidationError(
            f"The amount must be positive, with at most {decimals} decimal places in {currency}.",
            code=PayoutErrorCode.INVALID_AMOUNT,
            currency=currency,
            decimals=decimals,
        )
    return value.quantize(Decimal("0.01"))


def _clean_currency(currency: str) -> str:
    if not isinstance(currency, str) or not CURRENCY.match(currency):
        raise ValidationError(
            f"'{currency}' is not an ISO 4217 currency code (e.g. EUR).", code=PayoutErrorCode.INVALID_CURRENCY
        )
    if currency not in known_currencies():
        raise ValidationError(
            f"unsupported currency '{currency}'.", code=PayoutErrorCode.INVALID_CURRENCY, currency=currency
        )
    return currency
