"""Stripe's amounts -> the product's ISO minor units, at the Stripe edge.

Stripe sends every amount as an integer in "the currency's smallest unit" by ITS convention
(https://docs.stripe.com/currencies), which is not always ISO 4217's:
- zero-decimal currencies: the amount is the whole unit (500 JPY is 500). MGA is zero-decimal
  at Stripe but has 2 decimals in ISO 4217;
- three-decimal currencies (BHD, JOD, KWD, OMR, TND): 1.000 KWD is 1000 (the last digit is 0);
- special cases: ISK is effectively zero-decimal but Stripe keeps it as a two-decimal amount
  (100 = 1 krona, always ending in 00: ISO 4217 says 0 decimals); HUF and TWD are charged as
  two-decimal amounts (only their payouts are whole units).
Every other currency: the product's ISO table (core.currencies.exponent).
A KWD commission once came out 10x too large because a two-decimal rule was applied to a
three-decimal amount: one function below decides Stripe's exponent, and the commission is then
kept in the ISO minor units the ledger posts.
"""

from decimal import ROUND_HALF_UP, Decimal

from core import currencies

ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
TWO_DECIMAL_SPECIAL_CASES = frozenset({"ISK", "HUF", "TWD"})


def stripe_exponent(currency: str) -> int:
    """Decimals of an amount Stripe sends in `currency` (Stripe's rules, else the ISO table)."""
    code = currencies.normalize(currency)
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    if code in TWO_DECIMAL_SPECIAL_CASES:
        return 2
    return currencies.exponent(code)


def from_stripe(amount: int, currency: str) -> Decimal:
    """A Stripe amount as a Decimal of major units (1000 KWD-fils -> Decimal('1.000'))."""
    return Decimal(int(amount)).scaleb(-stripe_exponent(currency))


def commission_minor(*, amount_paid: int, currency: str, rate: int) -> int:
    """`rate` percent of a Stripe amount, rounded half-up to the currency's ISO minor unit."""
    digits = currencies.exponent(currency)
    major = from_stripe(amount_paid, currency) * rate / 100
    return currencies.to_minor(major.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP), currency)


def share_minor(*, total_minor: int, part: int, whole: int) -> int:
    """total_minor * part / whole, rounded half-up, capped at total_minor (a proportional reversal)."""
    if whole <= 0 or part <= 0:
        return 0
    share = (Decimal(total_minor) * min(part, whole) / whole).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return min(total_minor, int(share))
