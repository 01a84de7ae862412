"""Pages that must not issue more queries as their data grows: the super-admin's payout changelist
(and its API twin) and the affiliate's dashboard. Each is measured at a size below one page and at
a size past one page; an N+1 on any related object (affiliate, user, reviewer, tier) would show
as a difference. bench/pages.py measures the same pages at 100 and 10,000 rows."""

import pytest

from bench.proof.pages import (
    CHANGELIST,
    DASHBOARD,
    PAYOUT_API,
    add_affiliate_history,
    add_payouts,
    measure,
    new_affiliate,
    signed_in,
    superadmin,
)
from tests.proof.conftest import summary_line

pytestmark = pytest.mark.django_db
SMALL, LARGE = 4, 240  # the changelist shows 100 rows a page, the API 50, the dashboard 25 commissions


@pytest.mark.parametrize("url", [CHANGELIST, PAYOUT_API])
def test_payout_list_queries_do_not_grow_with_rows(url):
    client = signed_in(superadmin())
    add_payouts(SMALL, affiliates=2, reviewers=2)
    measure(client, url)  # warm the per-process caches (content types): both figures then count alike
    small = measure(client, url)

    add_payouts(LARGE - SMALL, affiliates=20, reviewers=3)
    large = measure(client, url)

    assert small.status == large.status == 200
    assert small.queries == large.queries, f"{url}: {small.queries} queries at {SMALL} rows, {large.queries} at {LARGE}"
    summary_line(f"queries: {url}: {small.queries} at {SMALL} payouts, {large.queries} at {LARGE}")


def test_affiliate_dashboard_queries_do_not_grow_with_history():
    affiliate = new_affiliate()
    client = signed_in(affiliate.user)
    add_affiliate_history(affiliate, SMALL)
    measure(client, DASHBOARD)  # warm the per-process caches (content types): both figures then count alike
    small = measure(client, DASHBOARD)

    add_affiliate_history(affiliate, LARGE - SMALL)
    large = measure(client, DASHBOARD)

    assert small.status == large.status == 200
    assert small.queries == large.queries, f"{small.queries} queries at {SMALL} commissions, {large.queries} at {LARGE}"
    summary_line(f"queries: {DASHBOARD}: {small.queries} at {SMALL} commissions, {large.queries} at {LARGE}")
