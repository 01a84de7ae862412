"""Bytes per row of the tables that grow with the business, the audit trail (audit_auditentry,
audit_fieldchange) and the ledger (ledger_transfer), measured on PostgreSQL after commissions and
payouts went through the product's own paths; then rows and bytes per day at a stated volume, and
what the hourly checks (the ledger's, the audit trail's) cost per row they read.

    .venv/bin/python bench/table_growth.py [--commissions 10000] [--payouts 2000] [--affiliates 200]
                                           [--per-day-commissions 20000] [--per-day-payouts 1000]

The paths, as production runs them (only the affiliates and their referrals are set up in bulk):
- a commission: Stripe's `invoice.paid` through `webhooks.stripe_events.handle_stripe_event` (the
  event-id claim, `record_commission`, the field trail's trigger rows for its creation) in the
  context of an anonymous webhook request; then the hourly `approve_held_commissions` sweep in a
  task's context (guarded transition, audit row, the COMMISSION_EARNED posting);
- a payout: `request_payout` by the affiliate (reservation), `approve_payout` by a super-admin,
  `dispatch_wise_transfer` as the task runs it (against the Wise stand-in on loopback: quote,
  transfer, funding), and Wise's `outgoing_payment_sent` through `record_wise_state` (the webhook's
  claim, the paid transition, the reservation posted). Tasks enqueued on commit are queued, not run.

One shortcut, which writes no row differently: the Wise client sends each call with `httpx.request`,
which builds a new client and so a new TLS context, loading the CA bundle, per call (even to the
plain-HTTP stand-in); here that context is built once, or the run would spend most of its time there.

Sizes: `VACUUM ANALYZE`, then pg_relation_size (heap), each index, pg_total_relation_size (heap,
indexes, TOAST); bytes per row = size / rows, on tables that only these runs wrote. The database is
bench_table_growth on BENCH_DATABASE_URL's server (harness.py), flushed first.
"""

import argparse
import itertools
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

if __name__ == "__main__":
    from harness import setup  # type: ignore[import-not-found]  # bench/ is the script's directory

    setup("table_growth")

from unittest import mock

import httpx._transports.default as httpx_transports
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.db import connection
from django.test.utils import override_settings
from django.utils import timezone

from affiliates.models import Affiliate, KycStatus, Referral
from affiliates.services import approve_held_commissions
from bench.proof.operations import tasks_queued_not_run
from core.actors import SystemActor
from core.context import acting_request, acting_system, correlation_id
from ledger.checks import verify_books
from payouts.models import Payout
from payouts.services import approve_payout, dispatch_wise_transfer, record_wise_state, request_payout
from sandbox.core import RunningStandIn
from sandbox.wise import WiseStandIn
from webhooks.stripe_events import handle_stripe_event

ROOT = Path(__file__).resolve().parent.parent
# The tables whose growth the plan is about, and the others these paths write once per event.
GROWTH_TABLES = ("audit_auditentry", "audit_fieldchange", "ledger_transfer")
EVENT_TABLES = (
    "affiliates_commission",
    "payouts_payout",
    "payouts_payoutattempt",
    "payouts_payoutapproval",
    "audit_webhookevent",  # webhooks.WebhookEvent (the table kept its first app's name)
    "audit_claim",  # core.Claim
)
INVOICE_CENTS = 25_000  # a 250.00 USD invoice; 20% commission: 50.00 USD
PAYOUT_AMOUNT = Decimal("10.00")  # under the dual-approval threshold: one approval, as most are


# --- who is acting: what the middleware and the task signals set in production -----------------


@contextmanager
def acting(*, user: Any = None, path: str = "", task: str = "") -> Iterator[None]:
    """The context of one HTTP request (its user and path) or one Celery task, with a fresh id."""
    if task:
        tokens = [correlation_id.set(f"task-{uuid.uuid4()}"), acting_system.set(f"task:{task}")]
    else:
        request = SimpleNamespace(user=user or AnonymousUser(), method="POST", path=path)
        tokens = [correlation_id.set(f"req-{uuid.uuid4().hex}"), acting_request.set(request)]
    try:
        yield
    finally:
        for token in reversed(tokens):
            token.var.reset(token)


# --- set-up: affiliates with referred customers, a reviewer, the Wise stand-in --------------------


def make_affiliates(count: int, customers_each: int) -> list[Affiliate]:
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"affiliate-{i:05d}", password=make_password("pw", hasher="md5"))
        for i in range(count)
    )
    affiliates = Affiliate.objects.bulk_create(
        Affiliate(user=user, commission_rate=20, kyc_status=KycStatus.VERIFIED, wise_recipient_id=f"rcpt-{user.pk}")
        for user in users
    )
    Referral.objects.bulk_create(
        Referral(affiliate=affiliate, stripe_customer_id=f"cus_{affiliate.pk:05d}_{c:03d}")
        for affiliate in affiliates
        for c in range(customers_each)
    )
    return affiliates


def reviewer() -> Any:
    return get_user_model().objects.create(
        username="finance-reviewer", is_staff=True, is_superuser=True, password=make_password("pw", hasher="md5")
    )


@contextmanager
def one_tls_context() -> Iterator[None]:
    build = httpx_transports.create_ssl_context
    built: dict[tuple[object, ...], Any] = {}

    def cached(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        key = (verify, cert, trust_env)
        if key not in built:
            built[key] = build(verify=verify, cert=cert, trust_env=trust_env)
        return built[key]

    with mock.patch.object(httpx_transports, "create_ssl_context", cached):
        yield


@contextmanager
def wise_standin() -> Iterator[WiseStandIn]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    app = WiseStandIn(private_key_pem=pem, webhook_url="", auto_complete_seconds=0)
    running = RunningStandIn(app)
    try:
        with override_settings(
            WISE_API_URL=running.url,
            WISE_API_TOKEN=app.token,
            WISE_PROFILE_ID=app.profile_id,
            WISE_WEBHOOK_PUBLIC_KEY=app.public_key_pem,
        ):
            yield app
    finally:
        running.stop()


# --- the product's paths -------------------------------------------------------------------------


def invoice_paid(n: int, customer: str) -> Any:
    import stripe

    body = {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": "invoice.paid",
        "data": {
            "object": {
                "id": f"in_{n:08d}{uuid.uuid4().hex[:16]}",
                "object": "invoice",
                "customer": customer,
                "amount_paid": INVOICE_CENTS,
                "currency": "usd",
                "status": "paid",
            }
        },
    }
    return stripe.Event.construct_from(body, "sk_bench")


def record_commissions(count: int, customers: list[str]) -> None:
    for n, customer in zip(range(count), itertools.cycle(customers), strict=False):
        with acting(path="/api/stripe/webhook/"):
            handle_stripe_event(event=invoice_paid(n, customer))


def approve_all_held() -> int:
    """The hourly sweep, run as if the hold had passed (its batches of 200 until none is left)."""
    later = timezone.now() + timedelta(days=settings.COMMISSION_HOLD_DAYS + 1)
    approved = 0
    while True:
        with acting(task="affiliates.tasks.approve_held_commissions"):
            batch = approve_held_commissions(actor=SystemActor("task:approve_held_commissions"), now=later)
        if not batch:
            return approved
        approved += batch


def pay_out(count: int, affiliates: list[Affiliate], admin: Any) -> None:
    for _, affiliate in zip(range(count), itertools.cycle(affiliates), strict=False):
        with acting(user=affiliate.user, path="/api/affiliates/me/payouts/"):
            payout = request_payout(affiliate=affiliate, amount=PAYOUT_AMOUNT, currency="USD", actor=affiliate.user)
        with acting(user=admin, path=f"/api/payouts/{payout.pk}/approve/"):
            approve_payout(payout_id=payout.pk, actor=admin)
        with acting(task="payouts.tasks.dispatch_wise_transfer"):
            dispatch_wise_transfer(payout_id=payout.pk)
        transfer_id = Payout.objects.values_list("wise_transfer_id", flat=True).get(pk=payout.pk)
        with acting(path="/api/wise/webhook/"):
            record_wise_state(transfer_id=transfer_id, state="outgoing_payment_sent", occurred_at=timezone.now())


# --- measuring -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSize:
    table: str
    rows: int
    heap: int
    indexes: int
    total: int  # heap + indexes + TOAST
    index_sizes: dict[str, int]

    def per_row(self, size: int) -> float:
        return size / self.rows if self.rows else 0.0


def row_counts(tables: tuple[str, ...]) -> dict[str, int]:
    counts = {}
    with connection.cursor() as cursor:
        for t in tables:
            cursor.execute(f"SELECT count(*) FROM {t}")
            counts[t] = cursor.fetchone()[0]
    return counts


def sizes(tables: tuple[str, ...]) -> list[TableSize]:
    with connection.cursor() as cursor:
        for t in tables:
            cursor.execute(f"VACUUM ANALYZE {t}")
        result = []
        for t in tables:
            cursor.execute(
                "SELECT count(*), pg_relation_size(%s::regclass), pg_indexes_size(%s::regclass), "
                f"pg_total_relation_size(%s::regclass) FROM {t}",
                [t, t, t],
            )
            rows, heap, indexes, total = cursor.fetchone()
            cursor.execute(
                "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
                "WHERE indrelid = %s::regclass ORDER BY 1",
                [t],
            )
            result.append(TableSize(t, rows, heap, indexes, total, dict(cursor.fetchall())))
        return result


# verify_audit_trail in a fresh process, so its peak memory is its own: with the server-side cursor
# that .iterator() uses by default, and without one (DISABLE_SERVER_SIDE_CURSORS, transaction pooling).
VERIFY_IN_A_FRESH_PROCESS = """
import resource, sys, time
sys.path.insert(0, sys.argv[2])
import django
django.setup()
from django.db import connection
from audit.chain import verify_audit_trail
connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = sys.argv[1] == "client-side"
connection.ensure_connection()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
report = verify_audit_trail()
elapsed = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(report.ok, report.chains, elapsed, (after - before) * 1024)
"""


@dataclass(frozen=True)
class VerifyRun:
    cursor: str
    ok: bool
    chains: int
    seconds: float
    memory: int  # growth of the process's peak resident memory, bytes


def verify_in_fresh_process(cursor: str) -> VerifyRun:
    argv = [sys.executable, "-c", VERIFY_IN_A_FRESH_PROCESS, cursor, str(ROOT)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600)  # noqa: S603 (our own argv)
    if done.returncode:
        raise RuntimeError(f"verify_audit_trail ({cursor} cursor) failed:\n{done.stderr[-3000:]}")
    ok, chains, seconds, memory = done.stdout.strip().splitlines()[-1].split()
    return VerifyRun(cursor, ok == "True", int(chains), float(seconds), int(memory))


def timed(label: str, work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    elapsed = time.perf_counter() - start
    print(f"  {label}: {elapsed:.1f} s", flush=True)
    return elapsed


# --- report --------------------------------------------------------------------------------------


def _mb(size: float) -> str:
    return f"{size / 1024 / 1024:,.1f} MB"


def _gb(size: float) -> str:
    return f"{size / 1024**3:,.2f} GB"


def report(args: argparse.Namespace, measured: list[TableSize], per_event: dict[str, tuple[float, float]]) -> str:
    from bench.harness import machine_table, table

    lines = [machine_table(), ""]
    lines.append(f"{args.commissions:,} commissions and {args.payouts:,} payouts through the product's paths:\n")
    lines.append(
        table(
            ["table", "rows", "heap B/row", "indexes B/row", "total B/row", "total"],
            [
                (
                    s.table,
                    f"{s.rows:,}",
                    f"{s.per_row(s.heap):.0f}",
                    f"{s.per_row(s.indexes):.0f}",
                    f"{s.per_row(s.total):.0f}",
                    _mb(s.total),
                )
                for s in measured
            ],
        )
    )
    lines.append("\nIndexes (bytes per row):\n")
    lines.append(
        table(
            ["index", "B/row"],
            [(name, f"{size / s.rows:.0f}") for s in measured if s.rows for name, size in s.index_sizes.items()],
        )
    )
    c_day, p_day = args.per_day_commissions, args.per_day_payouts
    lines.append(f"\nAt {c_day:,} commissions and {p_day:,} payouts a day (each paid out through Wise):\n")
    rows = []
    for s in measured:
        per_c, per_p = per_event[s.table]
        per_day = per_c * c_day + per_p * p_day
        bytes_day = per_day * s.per_row(s.total)
        rows.append(
            (
                s.table,
                f"{per_c:g}",
                f"{per_p:g}",
                f"{per_day:,.0f}",
                _mb(bytes_day),
                f"{per_day * 365 / 1e6:,.1f} M",
                _gb(bytes_day * 365),
            )
        )
    lines.append(
        table(["table", "rows/commission", "rows/payout", "rows/day", "per day", "rows/year", "per year"], rows)
    )
    return "\n".join(lines)


def main() -> None:
    from bench.harness import table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commissions", type=int, default=10_000)
    parser.add_argument("--payouts", type=int, default=2_000)
    parser.add_argument("--affiliates", type=int, default=200)
    parser.add_argument("--per-day-commissions", type=int, default=20_000)
    parser.add_argument("--per-day-payouts", type=int, default=1_000)
    args = parser.parse_args()

    call_command("flush", interactive=False, verbosity=0)
    tables = GROWTH_TABLES + EVENT_TABLES
    affiliates = make_affiliates(args.affiliates, customers_each=10)
    customers = list(Referral.objects.order_by("pk").values_list("stripe_customer_id", flat=True))
    admin = reviewer()
    print(f"{args.commissions:,} commissions, {args.payouts:,} payouts, {args.affiliates} affiliates", flush=True)

    with tasks_queued_not_run(), wise_standin(), one_tls_context():
        before = row_counts(tables)
        timed("commissions recorded (invoice.paid)", lambda: record_commissions(args.commissions, customers))
        timed("commissions approved (hourly sweep)", approve_all_held)
        after_commissions = row_counts(tables)
        timed("payouts requested, approved, sent, paid", lambda: pay_out(args.payouts, affiliates, admin))
        after_payouts = row_counts(tables)

    per_event = {
        t: (
            (after_commissions[t] - before[t]) / max(args.commissions, 1),
            (after_payouts[t] - after_commissions[t]) / max(args.payouts, 1),
        )
        for t in tables
    }
    measured = sizes(tables)
    audit_rows = next(s.rows for s in measured if s.table == "audit_auditentry")
    transfer_rows = next(s.rows for s in measured if s.table == "ledger_transfer")
    books = timed("verify_books (hourly ledger check)", verify_books)
    runs = [verify_in_fresh_process(cursor) for cursor in ("server-side", "client-side")]
    print()
    print(report(args, measured, per_event))
    print(f"\nHourly checks on these rows ({audit_rows:,} audit rows, {transfer_rows:,} transfers):\n")
    rows = [
        (
            f"verify_audit_trail, {run.cursor} cursor",
            f"{run.seconds:.2f} s",
            f"{run.seconds / audit_rows * 1e6:.0f} us per audit row",
            f"{_mb(run.memory)} ({run.memory / run.chains:,.0f} B per chain, {run.memory / audit_rows:,.0f} B per row)",
        )
        for run in runs
        if run.ok
    ]
    rows.append(("verify_books", f"{books:.2f} s", f"{books / transfer_rows * 1e6:.0f} us per transfer", ""))
    print(table(["check", "time", "per row", "peak memory growth"], rows))


if __name__ == "__main__":
    main()
