"""The product's one currency table: ISO 4217 codes and the exponent of their minor unit.

Exponents come from the `iso4217` package, which ships the ISO 4217 maintenance agency's own list
(a maintained source, never a hand list): USD 2, EUR 2, JPY 0, KRW 0, CLP 0, KWD 3, BHD 3, TND 3.
Babel's CLDR data was considered and not used: CLDR follows the coins in circulation and differs
from ISO for 13 codes (AFN, ALL, IRR, KPW, LAK, LBP, MGA, MMK, RSD, SOS, SYP, YER: ISO 2, CLDR 0;
IQD: ISO 3, CLDR 0), where the ledger must keep ISO's minor unit.

A provider with its own convention (Stripe's zero-decimal and special-case currencies) converts
its amounts to ISO minor units at its edge, before anything is posted.

Known codes are the active ISO codes that are money (funds, precious metals, XDR, XXX and XTS have
no minor unit in the table and are refused).
"""

from decimal import Decimal
from functools import cache

from iso4217 import Currency

from core.errors import ErrorCode, ValidationError


@cache
def known_currencies() -> frozenset[str]:
    return frozenset(currency.code for currency in Currency if currency.exponent is not None)


def normalize(currency: object) -> str:
    """The upper-case ISO code, or ValidationError(unknown_currency). Accepts Stripe's lower case."""
    code = currency.upper() if isinstance(currency, str) else None
    if code is None or code not in known_currencies():
        raise ValidationError(
            f"unknown currency {currency!r}", code=ErrorCode.UNKNOWN_CURRENCY, currency=str(currency)
        )
    return code


def exponent(currency: str) -> int:
    """Digits of the minor unit: 2 for USD (cents), 0 for JPY, 3 for KWD."""
    digits = Currency(normalize(currency)).exponent
    assert digits is not None  # normalize() admits only codes with a minor unit
    return digits


def to_minor(amount: Decimal, currency: str) -> int:
    """Decimal major units -> integer minor units; refuses a float (binary fractions are not
    money), NaN / Infinity, and more decimals than the currency has (1.005 USD is an error, not a
    rounding)."""
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int) or not Decimal(amount).is_finite():
        raise ValidationError(
            f"amount must be a finite Decimal or int, not {amount!r}",
            code=ErrorCode.INVALID_AMOUNT,
            amount=repr(amount),
        )
    code, digits = normalize(currency), exponent(currency)
    scaled = Decimal(amount).scaleb(digits)
    if scaled != scaled.to_integral_value():
        raise ValidationError(
            f"{amount} has more decimals than {code} allows ({digits})",
            code=ErrorCode.TOO_MANY_DECIMALS,
            amount=str(amount),
            currency=code,
            exponent=digits,
        )
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    """Integer minor units -> Decimal major units with exactly the currency's decimals."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise ValidationError("minor amount must be an int", code=ErrorCode.INVALID_AMOUNT, amount=repr(minor))
    return Decimal(minor).scaleb(-exponent(currency))
