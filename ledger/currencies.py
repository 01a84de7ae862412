"""The product's one currency table: ISO 4217 codes and the exponent of their minor unit.

Exponents come from the CLDR data that Babel ships (`babel.numbers.get_currency_precision`), a
maintained source, never a hand list: USD 2, EUR 2, JPY 0, KRW 0, CLP 0, KWD 3, BHD 3, TND 3 ...
CLDR 47 (Babel 2.18) agrees with the ISO 4217 minor units of every active ISO code except 13,
where CLDR follows the coins in circulation and ISO keeps the nominal unit: AFN, ALL, IRR, KPW,
LAK, LBP, MGA, MMK, RSD, SOS, SYP, YER (ISO 2, CLDR 0) and IQD (ISO 3, CLDR 0). An amount in one
of those from a provider must be checked against that provider's own convention before it is
posted (a factor of 100 or 1000 is at stake).

Known codes are those CLDR lists (current and historical: a balance kept in a retired currency
must stay readable), less XXX ("no currency") and XTS (testing). `get_currency_precision` answers
2 for any string, so the membership test is what refuses a typo.
"""

from decimal import Decimal
from functools import cache

from babel.numbers import get_currency_precision, list_currencies

from core.errors import ValidationError
from ledger.errors import LedgerErrorCode

_NOT_MONEY = frozenset({"XXX", "XTS"})


@cache
def known_currencies() -> frozenset[str]:
    return frozenset(list_currencies()) - _NOT_MONEY


def normalize(currency: object) -> str:
    """The upper-case ISO code, or ValidationError(unknown_currency). Accepts Stripe's lower case."""
    code = currency.upper() if isinstance(currency, str) else None
    if code is None or code not in known_currencies():
        raise ValidationError(
            f"unknown currency {currency!r}", code=LedgerErrorCode.UNKNOWN_CURRENCY, currency=str(currency)
        )
    return code


def exponent(currency: str) -> int:
    """Digits of the minor unit: 2 for USD (cents), 0 for JPY, 3 for KWD."""
    return get_currency_precision(normalize(currency))


def to_minor(amount: Decimal, currency: str) -> int:
    """Decimal major units -> integer minor units; refuses a float (binary fractions are not
    money), NaN / Infinity, and more decimals than the currency has (1.005 USD is an error, not a
    rounding)."""
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int) or not Decimal(amount).is_finite():
        raise ValidationError(
            f"amount must be a finite Decimal or int, not {amount!r}",
            code=LedgerErrorCode.INVALID_AMOUNT,
            amount=repr(amount),
        )
    code, digits = normalize(currency), exponent(currency)
    scaled = Decimal(amount).scaleb(digits)
    if scaled != scaled.to_integral_value():
        raise ValidationError(
            f"{amount} has more decimals than {code} allows ({digits})",
            code=LedgerErrorCode.TOO_MANY_DECIMALS,
            amount=str(amount),
            currency=code,
            exponent=digits,
        )
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    """Integer minor units -> Decimal major units with exactly the currency's decimals."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise ValidationError("minor amount must be an int", code=LedgerErrorCode.INVALID_AMOUNT, amount=repr(minor))
    return Decimal(minor).scaleb(-exponent(currency))
