"""`{% load money %}{{ amount|money:currency }}`: the template face of core.money.format_money."""

from decimal import Decimal

from django import template

from core.money import format_money

register = template.Library()


@register.filter(name="money")
def money(amount: Decimal | int | None, currency: str) -> str:
    return "" if amount is None else format_money(amount, currency)
