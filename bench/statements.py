"""SQL statements per operation, statement by statement.

    .venv/bin/python bench/statements.py

The operations and their data come from bench/proof/operations.py, the same builders that
tests/proof/test_statement_counts.py pins in CI, so this prints exactly what CI holds the code to.
Steady state: ContentType cache warm, on-commit tasks queued (not run inline). The POS push and
the loyalty grant talk to the Square and Stripe stand-ins (started here, on loopback). The database
is bench_statements (flushed first; see harness.py).
"""

from harness import machine_table, setup, table

setup("statements")

from django.core.management import call_command  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from bench.proof import operations  # noqa: E402
from bench.proof.statements import CONTROL, capture  # noqa: E402
from sandbox.core import RunningStandIn  # noqa: E402
from sandbox.square import SquareStandIn  # noqa: E402
from sandbox.stripe import StripeStandIn  # noqa: E402

STRIPE_KEY = "sk_test_bench"


def main() -> None:
    call_command("flush", interactive=False, verbosity=0)
    print(machine_table(), "\n", flush=True)
    square = RunningStandIn(SquareStandIn())
    stripe = RunningStandIn(StripeStandIn(api_key=STRIPE_KEY))
    rows, listings = [], []
    try:
        with (
            override_settings(SQUARE_BASE_URL=square.url, STRIPE_API_BASE=stripe.url, STRIPE_SECRET_KEY=STRIPE_KEY),
            operations.tasks_queued_not_run(),
        ):
            for build in operations.BUILDERS.values():
                operation = build()
                captured = capture(operation.run, expect=operation.expect)
                inside, outside = captured.split()
                transactions = captured.kinds.count("BEGIN")
                rows.append([operation.name, captured.statements, inside, outside, transactions])
                listings.append((operation.name, captured.kinds))
    finally:
        square.stop()
        stripe.stop()
    headers = ["operation", "statements", "in a transaction", "outside (autocommit)", "transactions"]
    print(table(headers, rows))
    for name, kinds in listings:
        print(f"\n{name}:")
        in_transaction = False
        for kind in kinds:
            if kind in CONTROL:
                in_transaction = kind == "BEGIN"
                print(f"  {kind}")
            else:
                print(f"    {kind}" if in_transaction else f"  {kind}  (autocommit)")


if __name__ == "__main__":
    main()
