"""core.admin_money: the one way an admin screen shows an amount, formatted by core.money and
right-aligned by core/static/core/css/money.css, which every admin page loads."""

from decimal import Decimal

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from core.admin_money import MONEY_CLASS, money_column, money_html
from tests.factories.accounts import SuperAdminFactory


class Rows:
    @money_column("Amount", ordering="amount")
    def amount_shown(self, row: tuple[Decimal | None, str]) -> tuple[Decimal, str] | None:
        amount, currency = row
        return None if amount is None else (amount, currency)


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (Decimal("1200"), "USD", "$1,200.00"),
        (Decimal("1235"), "JPY", "¥1,235"),
        (Decimal("1.25"), "KWD", "KWD 1.250"),
        (Decimal("-12"), "EUR", "-€12.00"),
        (Decimal("368.840000000000"), "USD", "$368.84"),
    ],
)
def test_a_money_column_formats_in_the_currencys_exponent_with_grouping(amount, currency, shown):
    cell = Rows().amount_shown((amount, currency))

    assert cell == f'<span class="{MONEY_CLASS}">{shown}</span>'
    assert cell == money_html(amount, currency)


def test_a_money_columns_title_carries_the_class_and_sorting():
    method = Rows.amount_shown

    assert method.short_description == '<span class="money">Amount</span>'  # type: ignore[attr-defined]
    assert method.admin_order_field == "amount"  # type: ignore[attr-defined]


def test_no_amount_is_a_dash():
    assert Rows().amount_shown((None, "USD")) == "-"


def test_the_stylesheet_right_aligns_amounts_in_cells():
    path = finders.find("core/css/money.css")

    assert path is not None
    with open(path, encoding="utf-8") as stylesheet:
        css = stylesheet.read()
    assert "td span.money, th span.money { display: block; text-align: right;" in css
    assert "td.money, th.money { text-align: right; }" in css


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/admin/", "/admin/affiliates/commission/", "/admin/ledger/account/trial-balance/"])
def test_every_admin_page_loads_the_stylesheet(page):
    client = Client()
    client.force_login(SuperAdminFactory())

    response = client.get(page)

    assert response.status_code == 200
    assert '<link rel="stylesheet" href="/static/core/css/money.css">' in response.content.decode()
