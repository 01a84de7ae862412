"""Amounts on admin screens: formatted by core.money.format_money and right-aligned in columns.

One mechanism for every app's changelists, inlines and readonly fields: a value wrapped in
`<span class="money">` (MONEY_CLASS), which core/static/core/css/money.css (included on every admin
page by templates/admin/base_site.html) right-aligns with tabular digits inside a table cell. A
template does the same with `<td class="money">{{ amount|money:currency }}</td>`.

    @money_column("Amount", ordering="amount")
    def amount_shown(self, obj: Payout) -> Money | None:
        return obj.amount, obj.currency
"""

from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from typing import Any, TypeAlias, TypeVar

from django.contrib import admin
from django.utils.html import format_html
from django.utils.safestring import SafeString

from core.money import format_money

MONEY_CLASS = "money"
# (amount in major units, ISO currency code)
Money: TypeAlias = tuple[Decimal | int, str]
NO_AMOUNT = "-"

_Admin = TypeVar("_Admin")
_Row = TypeVar("_Row")


def money_html(amount: Decimal | int, currency: str) -> SafeString:
    """'<span class="money">$1,200.00</span>': a formatted amount that lines up in a column."""
    return format_html('<span class="{}">{}</span>', MONEY_CLASS, format_money(amount, currency))


def money_header(label: str) -> SafeString:
    """A column title aligned with its amounts (the right edge)."""
    return format_html('<span class="{}">{}</span>', MONEY_CLASS, label)


def money_column(
    description: str, *, ordering: str | None = None
) -> Callable[[Callable[[_Admin, _Row], Money | None]], Callable[[_Admin, _Row], str]]:
    """Decorate a ModelAdmin / inline method that returns (amount, currency), or None for no amount
    (shown as '-'), into a list_display / readonly_fields entry: formatted, right-aligned, its title
    aligned with it."""

    def decorate(method: Callable[[_Admin, _Row], Money | None]) -> Callable[[_Admin, _Row], str]:
        @wraps(method)
        def cell(self: _Admin, obj: _Row) -> str:
            value = method(self, obj)
            return NO_AMOUNT if value is None else money_html(*value)

        display: Any = admin.display(description=money_header(description), ordering=ordering)
        return display(cell)

    return decorate
