"""The screen sweeps' own checks (tests/browser/screen_checks.py), on pages made for them: each check
finds what it is for, and lets through the numbers that are not amounts (rates, ids, times, hashes,
an amount in a column headed by its currency, a 3-decimal currency)."""

import sys
from collections.abc import Iterator

import pytest
from django.test import RequestFactory
from django.views.debug import technical_500_response
from playwright.sync_api import Browser, Page, Route

from tests.browser.screen_checks import screen_problems

SITE = "http://screens.test"  # answered by the route below: nothing leaves the machine


@pytest.fixture
def show(browser: Browser) -> Iterator:
    """show(html, width=..., status=...) -> (page, response): the page as Chromium lays it out."""
    context = browser.new_context()
    served: dict[str, tuple[int, str]] = {}

    def answer(route: Route) -> None:
        status, body = served[route.request.url]
        route.fulfill(status=status, body=body, content_type="text/html; charset=utf-8")

    context.route(f"{SITE}/**", answer)

    def open_page(html: str, *, width: int = 1366, status: int = 200) -> tuple[Page, object]:
        url = f"{SITE}/{len(served)}"
        served[url] = (status, f"<!doctype html><html><body>{html}</body></html>")
        page = context.new_page()
        page.set_viewport_size({"width": width, "height": 700})
        return page, page.goto(url)

    yield open_page
    context.close()


def test_money_shown_as_money_and_numbers_that_are_not_amounts_pass(show):
    page, response = show(
        """<div id="content">
        <p>Balance $1,234.50, lifetime €12,000.00, KWD 1.250 and ¥1,235</p>
        <table><thead><tr><th>Amount (USD)</th><th>Rate</th><th>Id</th></tr></thead>
          <tbody><tr><td>310.00</td><td>20.00%</td><td>12</td></tr></tbody></table>
        <table><thead><tr><th>Amount</th><th>Currency</th></tr></thead>
          <tbody><tr><td>45.50</td><td>USD</td></tr></tbody></table>
        <p>From 127.0.0.1 at 21:05:33.123, 4 payouts, version 1.0.0</p>
        <code>368.840000000000</code> <pre>{"amount": "310.00"}</pre>
        <span data-raw>1234.5678</span>
        </div>"""
    )
    assert screen_problems(page, response) == []


def test_raw_floats_ungrouped_and_currencyless_amounts_are_named(show):
    page, response = show(
        """<div id="content">
        <p>Pending review 4 (368.840000000000)</p>
        <p>Total 1234.50 USD</p>
        <p>Balance 310.00</p>
        <p>Gold: 90-day total 1600.000 USD</p>
        </div>
        <p>Outside the content: 99.99</p>"""
    )
    assert screen_problems(page, response) == [
        "raw number '368.840000000000' in 'Pending review 4 (368.840000000000)'",
        "amount not grouped '1234.50' in 'Total 1234.50 USD'",
        "amount without currency '310.00' in 'Balance 310.00'",
        "3 decimals without a 3-decimal currency '1600.000' in 'Gold: 90-day total 1600.000 USD'",
    ]


def test_a_page_wider_than_a_phone_is_named_with_what_sticks_out(show):
    wide = '<div id="content"><table id="ledger"><tr><td style="min-width:800px">wide</td></tr></table></div>'
    page, response = show(wide, width=390)
    [problem] = screen_problems(page, response)
    assert problem.startswith("the page is ") and "wider than the window: table#ledger" in problem, problem

    # the same table in a box that scrolls sideways: the page itself fits
    boxed = '<div id="content"><div style="overflow-x:auto">' + wide.removeprefix('<div id="content">') + "</div>"
    page, response = show(boxed, width=390)
    assert screen_problems(page, response) == []


def test_django_technical_error_page_and_http_errors_are_named(show, settings):
    settings.DEBUG = True
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        technical = technical_500_response(RequestFactory().get("/admin/"), *sys.exc_info()).content.decode()
    page, response = show(technical, status=500)
    problems = screen_problems(page, response)
    assert problems[:2] == ["HTTP 500", "Django's technical DEBUG page"], problems

    page, response = show("<main><h1>Not found</h1></main>", status=404)
    assert screen_problems(page, response) == ["HTTP 404"]
