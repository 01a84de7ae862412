"""The one way every screen and email shows an amount: symbol or code, grouping, and exactly the
currency's own ISO exponent of decimals (USD 1,234.50, JPY 1,235, KWD 1.250).

Babel's CLDR data supplies the symbols, grouping and sign patterns; the number of decimals comes
from core.currencies (ISO 4217), not from CLDR, which differs from ISO for a few codes (see there).
Screens call format_money (or the `money` template filter in core/templatetags/money.py); nothing
renders a Decimal amount with str() or floatformat.
"""

from decimal import Decimal

from babel.numbers import format_decimal, get_currency_symbol

from core.currencies import exponent, normalize

# The back office's language is English; a deployment for another locale changes it here, once.
LOCALE = "en_US"


def format_money(amount: Decimal | int, currency: str, *, with_currency: bool = True) -> str:
    """'$1,234.50', '¥1,235', 'KWD 1.250', '-€12.00'; with_currency=False gives only the number
    ('1,234.50'), for a column whose header names the currency."""
    code = normalize(currency)
    digits = exponent(code)
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    number = format_decimal(abs(Decimal(amount)), format=pattern, locale=LOCALE, decimal_quantization=True)
    if not with_currency:
        return f"-{number}" if amount < 0 else number
    symbol = get_currency_symbol(code, locale=LOCALE)
    # A currency without its own symbol in the locale shows its code, set apart by a space.
    shown = f"{code} {number}" if symbol == code else f"{symbol}{number}"
    return f"-{shown}" if amount < 0 else shown


def format_totals(totals: dict[str, Decimal]) -> str:
    """Several currencies on one line, by code: '$1,200.00 · €40.00'."""
    return " · ".join(format_money(amount, code) for code, amount in sorted(totals.items()))
