"""A refused payout request, in the affiliate's words.

The payouts service decides and names its refusal by error code (payouts.errors.PayoutErrorCode,
core.errors.ErrorCode) with the figures in the error's details; this module only words each code
for the dashboard, with amounts through core.money. An unknown code falls back to the service's
own message, so a new rule is never silently hidden.
"""

from decimal import Decimal, InvalidOperation

from django.forms import Form

from core.errors import DomainError, ErrorCode
from core.money import format_money
from payouts.errors import PayoutErrorCode
from portal.selectors import payable_currencies


def form_problem(form: Form) -> str:
    """The first thing wrong with the posted form (it only parses: the rules are the service's)."""
    for errors in form.errors.values():
        return str(errors[0])
    return "Enter the amount you want to be paid."


def refusal_message(exc: DomainError, *, balances: dict[str, Decimal], requested_currency: str) -> str:
    """balances: what the affiliate may request per currency (portal.selectors.available_balances)."""
    details = exc.details
    currency = str(details.get("currency") or requested_currency)
    if exc.code == PayoutErrorCode.INSUFFICIENT_BALANCE:
        return _insufficient(details, currency, balances)
    if exc.code == PayoutErrorCode.AMOUNT_TOO_LARGE:
        balance = balances.get(currency)
        largest = _money(details.get("maximum"), currency)
        if balance is None or balance <= 0:
            return f"That amount is more than the largest single payout ({largest}). {_no_balance(currency, balances)}"
        return (
            f"That amount exceeds your available balance of {format_money(balance, currency)} "
            f"(and the largest single payout, {largest})."
        )
    if exc.code in (PayoutErrorCode.INVALID_CURRENCY, ErrorCode.UNKNOWN_CURRENCY):
        return f"{requested_currency or 'That'} is not a currency we pay out in. {_where_you_can(balances)}"
    if exc.code == PayoutErrorCode.INVALID_AMOUNT:
        if "decimals" in details:
            decimals = int(details["decimals"])
            if decimals == 0:
                return f"Amounts in {currency} are whole numbers, without decimals."
            return f"Amounts in {currency} have at most {decimals} decimal place{'s' if decimals != 1 else ''}."
        return "Enter an amount greater than zero."
    return exc.message


def _insufficient(details: dict, currency: str, balances: dict[str, Decimal]) -> str:
    balance = balances.get(currency)
    if balance is None or balance <= 0:
        return _no_balance(currency, balances)
    requested = _money(details.get("requested"), currency)
    return (
        f"{requested} exceeds your available balance of {format_money(balance, currency)}: "
        f"request {format_money(balance, currency)} or less."
    )


def _no_balance(currency: str, balances: dict[str, Decimal]) -> str:
    return f"You have no balance in {currency}. {_where_you_can(balances)}"


def _where_you_can(balances: dict[str, Decimal]) -> str:
    payable = payable_currencies(balances)
    if not payable:
        return "Nothing is payable yet: commissions become payable once their hold period is over."
    return f"You can request payouts in: {', '.join(payable)}."


def _money(amount: object, currency: str) -> str:
    try:
        return format_money(Decimal(str(amount)), currency)
    except (InvalidOperation, DomainError):
        return f"{amount} {currency}"
