"""The one currency table: ISO 4217 codes and minor-unit exponents (the iso4217 package), exact conversions."""

from decimal import Decimal

import pytest

from core.currencies import exponent, from_minor, known_currencies, to_minor
from core.errors import ErrorCode, ValidationError


@pytest.mark.parametrize(
    ("currency", "digits"),
    [("USD", 2), ("EUR", 2), ("GBP", 2), ("JPY", 0), ("KRW", 0), ("CLP", 0), ("KWD", 3), ("BHD", 3), ("TND", 3)],
)
def test_exponents_come_from_the_maintained_table(currency, digits):
    assert exponent(currency) == digits
    assert exponent(currency.lower()) == digits  # Stripe sends lower case


@pytest.mark.parametrize("code", ["ABC", "usdx", "", "XXX", "XTS", None, 840])
def test_an_unknown_currency_is_refused_with_its_code(code):
    with pytest.raises(ValidationError) as refused:
        exponent(code)
    assert refused.value.code == ErrorCode.UNKNOWN_CURRENCY


def test_the_table_is_iso_4217_not_cldr():
    assert len(known_currencies()) > 150
    assert {"USD", "EUR", "JPY", "KWD"} <= known_currencies()
    # Where CLDR (Babel) follows the coins in circulation, the ledger keeps ISO's minor unit.
    assert (exponent("IQD"), exponent("AFN"), exponent("RSD")) == (3, 2, 2)


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        (Decimal("12.34"), "USD", 1234),
        (Decimal("12.30"), "EUR", 1230),
        (Decimal("1.230"), "USD", 123),  # trailing zeros are not extra decimals
        (Decimal("1500"), "JPY", 1500),
        (Decimal("1.234"), "KWD", 1234),  # the bug: 10x too large with a 2-digit table
        (Decimal("-0.01"), "USD", -1),
        (7, "JPY", 7),
    ],
)
def test_to_minor_and_back(amount, currency, minor):
    assert to_minor(amount, currency) == minor
    assert from_minor(minor, currency) == Decimal(amount)


def test_from_minor_has_exactly_the_currency_decimals():
    assert str(from_minor(1234, "KWD")) == "1.234"
    assert str(from_minor(150, "USD")) == "1.50"
    assert str(from_minor(5, "JPY")) == "5"


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        (Decimal("1.005"), "USD", ErrorCode.TOO_MANY_DECIMALS),
        (Decimal("0.5"), "JPY", ErrorCode.TOO_MANY_DECIMALS),
        (Decimal("1.2345"), "KWD", ErrorCode.TOO_MANY_DECIMALS),
        (1.5, "USD", ErrorCode.INVALID_AMOUNT),
        (True, "USD", ErrorCode.INVALID_AMOUNT),
        ("1.00", "USD", ErrorCode.INVALID_AMOUNT),
        (Decimal("NaN"), "USD", ErrorCode.INVALID_AMOUNT),
        (Decimal("Infinity"), "USD", ErrorCode.INVALID_AMOUNT),
        (Decimal("1"), "ABC", ErrorCode.UNKNOWN_CURRENCY),
    ],
)
def test_to_minor_refuses_what_it_cannot_convert_exactly(amount, currency, code):
    with pytest.raises(ValidationError) as refused:
        to_minor(amount, currency)
    assert refused.value.code == code


@pytest.mark.parametrize("minor", [1.0, Decimal("1"), True, "1"])
def test_from_minor_takes_only_an_int(minor):
    with pytest.raises(ValidationError) as refused:
        from_minor(minor, "USD")
    assert refused.value.code == ErrorCode.INVALID_AMOUNT
