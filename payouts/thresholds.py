"""PAYOUT_DUAL_APPROVAL_THRESHOLD: above which amount a payout needs two different super-admins.

The setting (config/settings.py, from the environment) is "USD=1000.00,EUR=1000.00": per currency,
the largest amount ONE super-admin may approve alone; a payout strictly above it needs the
approvals of two different super-admins (payouts.services.approvals). "*=<amount>" sets it for
every currency without an entry of its own. A currency with neither needs two approvals for every
amount: fail-safe, because nobody has said what a large amount is in it (1,000 is about 7 USD in
JPY and about 3,250 USD in KWD). Parsed on every use (a few entries), validated once at start-up
(PayoutsConfig.ready()), so a typo stops every process instead of weakening the rule.
"""

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.currencies import known_currencies

ANY_CURRENCY = "*"
DUAL = 2  # approvals needed above the threshold: two different super-admins


def dual_approval_thresholds() -> dict[str, Decimal]:
    """{currency or "*": the largest amount one approval covers}, from the setting."""
    raw: str | Mapping[str, object] = settings.PAYOUT_DUAL_APPROVAL_THRESHOLD
    pairs = _pairs(raw) if isinstance(raw, str) else list(raw.items())
    thresholds = {}
    for currency, amount in pairs:
        code = str(currency).strip().upper()
        if code != ANY_CURRENCY and code not in known_currencies():
            raise ImproperlyConfigured(f"PAYOUT_DUAL_APPROVAL_THRESHOLD: '{currency}' is not an ISO 4217 currency.")
        try:
            value = Decimal(str(amount).strip())
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite() or value < 0:
            raise ImproperlyConfigured(f"PAYOUT_DUAL_APPROVAL_THRESHOLD: '{amount}' ({code}) is not an amount >= 0.")
        thresholds[code] = value
    return thresholds


def single_approval_limit(currency: str) -> Decimal | None:
    """The largest amount in `currency` that one approval covers, or None: every amount needs two."""
    thresholds = dual_approval_thresholds()
    return thresholds.get(currency, thresholds.get(ANY_CURRENCY))


def approvals_required(*, amount: Decimal, currency: str) -> int:
    """1, or DUAL when `amount` is above the currency's threshold (or the currency has none)."""
    limit = single_approval_limit(currency)
    return DUAL if limit is None or Decimal(amount) > limit else 1


def _pairs(raw: str) -> list[tuple[str, str]]:
    pairs = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        currency, equals, amount = item.partition("=")
        if not equals:
            raise ImproperlyConfigured(f"PAYOUT_DUAL_APPROVAL_THRESHOLD: '{item}' is not CURRENCY=AMOUNT.")
        pairs.append((currency, amount))
    return pairs
