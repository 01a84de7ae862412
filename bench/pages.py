"""Queries and time of the pages that list growing data, at 100 and 10,000 rows.

    .venv/bin/python bench/pages.py [--sizes 100,10000] [--repeat 5]

Pages: the super-admin's payout changelist (/admin/payouts/payout/?status=all, 100 rows a page),
its API twin (/api/payouts/, 50 a page) with N payouts over 20 affiliates and 3 reviewers; the
affiliate's dashboard (/affiliate/) with N commissions over the 90-day window, N/10 payouts and
N/100 + 1 tier events. Requests go through Django's test client (the whole stack but the socket).
Time is the median of --repeat GETs after one warm-up GET. The database is bench_pages (flushed
first; see harness.py). tests/proof/test_query_growth.py asserts the same query counts in CI.
"""

import argparse

from harness import load_now, machine_table, setup, table

setup("pages")

from django.core.management import call_command  # noqa: E402

from bench.proof.pages import (  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,10000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    call_command("flush", interactive=False, verbosity=0)
    print(machine_table(), "\n", flush=True)

    admin = signed_in(superadmin())
    affiliate = new_affiliate()
    dashboard = signed_in(affiliate.user)
    rows, have = [], 0
    for size in sizes:
        add_payouts(size - have, affiliates=20, reviewers=3)
        add_affiliate_history(affiliate, size - have)
        have = size
        for label, client, url in [
            ("payout changelist", admin, CHANGELIST),
            ("payout API list", admin, PAYOUT_API),
            ("affiliate dashboard", dashboard, DASHBOARD),
        ]:
            measure(client, url)  # warm-up: templates, caches
            got = measure(client, url, repeat=args.repeat)
            assert got.status == 200, (url, got.status)
            rows.append([label, url, f"{size:,}", got.queries, f"{got.seconds * 1000:.1f}"])
        print(f"  {size:,} rows measured (load {load_now():.2f})", flush=True)

    rows.sort(key=lambda row: (row[0], int(row[2].replace(",", ""))))
    print()
    print(table(["page", "url", "rows", "queries", "ms (median)"], rows))
    by_page: dict[str, set[int]] = {}
    for label, _, _, queries, _ in rows:
        by_page.setdefault(label, set()).add(queries)
    grown = [label for label, counts in by_page.items() if len(counts) > 1]
    print(f"\nqueries grow with rows: {', '.join(grown) if grown else 'no page'}")


if __name__ == "__main__":
    main()
