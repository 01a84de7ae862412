"""The books under load: one hot affiliate account against 16 distinct ones, commission postings
with and without the ledger, and the SQL statements of each ledger operation.

    .venv/bin/python bench/ledger.py [--ops 40] [--earn-ops 120] [--repeat 3] [--clients 16]

(a) reservation + approve + post, 16 client processes: every op is `request_payout` (the payout row
    and the ledger's ONE guarded UPDATE reservation), `approve_payout` (the guarded transition, its
    audit row and the books' re-check SELECT ... FOR UPDATE of the payable account) and the post of
    the reservation (`payouts.services.books.post_payout`, what Wise's success books), three
    transactions. "hot": all 16 clients on ONE affiliate's payable account; "distinct": one
    affiliate each. Target: hot >= 0.5x distinct.
(b) commission earned, 16 clients, 16 different affiliates, with the ledger vs the same without
    it (the posting replaced by nothing in the client): "approve" is the product's
    `approve_commission`, where a commission is posted (row lock, guarded transition, audit row,
    and the COMMISSION_EARNED posting `affiliates.services.postings.post_earned`); "insert" is the
    stricter comparison, a bare Commission INSERT with and without its posting in the same
    transaction. The platform's commission-expense account keeps no balance columns, so every
    posting only reads it. Also at 1 client, whose ratio is the cost of the extra statement with
    no contention at all: if the 16-client ratio is no worse, nothing serialises. Target: with
    >= 0.7x without at 16 clients.
(c) statements per operation (request, approve, post, void, earn posting), captured as
    tests/proof/test_ledger_statements.py asserts them (OPERATIONS below are shared with it).

Besides ops/s, each run reports the client processes' CPU per operation and, sampled every 10 ms
from a separate connection, the share of the database's busy backends that were waiting on a lock:
serialisation on a hot row shows there, whereas a machine short of CPU only lowers ops/s.

Bounded by the work: each client does a fixed number of operations (no duration), variants are
interleaved and repeated, and the tables show medians. Loopback PostgreSQL only: the database is
bench_<BENCH_LEDGER_NAME, default "ledger"> on BENCH_DATABASE_URL's server (see harness.py),
flushed first. Each client is a forked process that closes the parent's connection first and its
own at the end.
"""

import argparse
import itertools
import multiprocessing as mp
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from unittest import mock

if __name__ == "__main__":
    from harness import setup

    setup(os.environ.get("BENCH_LEDGER_NAME", "ledger"))

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.db import connections

from affiliates.models import Affiliate, Commission, CommissionStatus, KycStatus
from affiliates.services import approve_commission, postings
from audit.models import AuditEntry
from bench.proof.operations import Operation, tasks_queued_not_run
from core.currencies import to_minor
from core.transactions import atomic
from payouts.models import Payout
from payouts.services import approve_payout, books, request_payout

_serial = itertools.count(1)


# --- data ----------------------------------------------------------------------------------------


def admin_user() -> Any:
    user, _ = get_user_model().objects.get_or_create(
        username="bench-ledger-admin",
        defaults={
            "email": "bench@example.com",
            "password": make_password("pw"),
            "is_staff": True,
            "is_superuser": True,
        },
    )
    return user


def affiliate() -> Affiliate:
    n = next(_serial)
    user = get_user_model().objects.create(username=f"bench-ledger-{os.getpid()}-{n}", password=make_password("pw"))
    return Affiliate.objects.create(
        user=user, commission_rate=20, kyc_status=KycStatus.VERIFIED, wise_recipient_id=f"rcpt-{os.getpid()}-{n}"
    )


def commission(owner: Affiliate, amount: Decimal, currency: str = "EUR") -> Commission:
    n = f"{os.getpid()}_{next(_serial):08d}"
    return Commission.objects.create(
        affiliate=owner,
        stripe_invoice_id=f"in_bench_{n}",
        stripe_event_id=f"evt_bench_{n}",
        amount=amount,
        currency=currency,
        rate=20,
        status=CommissionStatus.APPROVED,
    )


def earn(owner: Affiliate, amount: Decimal, currency: str = "EUR") -> Commission:
    """An approved commission and its COMMISSION_EARNED posting, in one transaction (as approval does)."""
    with atomic():
        row = commission(owner, amount, currency)
        postings.post_earned(commission=row, amount_minor=to_minor(amount, currency))
    return row


def warm() -> None:
    for model in (Payout, Commission, Affiliate, AuditEntry):
        ContentType.objects.get_for_model(model)


# --- (c) the operations whose statements are counted (shared with tests/proof) --------------------


def request_op() -> Operation:
    admin, owner = admin_user(), affiliate()
    earn(owner, Decimal("1000.00"))
    books.clearing_account("EUR")  # the platform account exists once the first payout is made
    warm()
    return Operation(
        "payout request (reservation)",
        lambda: request_payout(affiliate=owner, amount=Decimal("310.00"), currency="EUR", actor=admin),
    )


def approve_op() -> Operation:
    admin, owner = admin_user(), affiliate()
    earn(owner, Decimal("1000.00"))
    # The affiliate asks, a super-admin approves: a requester never reviews (payouts.authority).
    payout = request_payout(affiliate=owner, amount=Decimal("310.00"), currency="EUR", actor=owner.user)
    warm()
    return Operation("approve (with the books' re-check)", lambda: approve_payout(payout_id=payout.pk, actor=admin))


def _in_transaction(posting: Callable[[Payout], object], payout: Payout) -> Callable[[], object]:
    def run() -> object:
        with atomic():  # as the payouts services call them: inside the transition's transaction
            return posting(payout)

    return run


def post_op() -> Operation:
    admin, owner = admin_user(), affiliate()
    earn(owner, Decimal("1000.00"))
    payout = request_payout(affiliate=owner, amount=Decimal("310.00"), currency="EUR", actor=admin)
    warm()
    return Operation("post a reservation (Wise success)", _in_transaction(books.post_payout, payout))


def void_op() -> Operation:
    admin, owner = admin_user(), affiliate()
    earn(owner, Decimal("1000.00"))
    payout = request_payout(affiliate=owner, amount=Decimal("310.00"), currency="EUR", actor=admin)
    warm()
    return Operation(
        "void a reservation (reject, final failure)", _in_transaction(books.void_payout_reservation, payout)
    )


def earn_op() -> Operation:
    owner = affiliate()
    earn(owner, Decimal("1.00"))  # the affiliate's payable and the platform's expense account exist
    row = commission(owner, Decimal("42.50"))
    warm()

    def run() -> object:
        with atomic():
            return postings.post_earned(commission=row, amount_minor=4_250)

    return Operation("commission earned posting", run)


OPERATIONS: dict[str, Callable[[], Operation]] = {
    "request": request_op,
    "approve": approve_op,
    "post": post_op,
    "void": void_op,
    "earn": earn_op,
}


# --- (a) and (b): concurrent clients ---------------------------------------------------------------


def op_payout_cycle(owner_id: int, admin_id: int) -> Callable[[], None]:
    owner = Affiliate.objects.get(pk=owner_id)
    admin = get_user_model().objects.get(pk=admin_id)

    def one() -> None:
        payout = request_payout(affiliate=owner, amount=Decimal("1.00"), currency="EUR", actor=owner.user)
        approve_payout(payout_id=payout.pk, actor=admin)  # never the requester (payouts.authority)
        with atomic():
            books.post_payout(payout)

    return one


def op_commission(owner_id: int, with_ledger: bool, mode: str, ops: int) -> Callable[[], None]:
    """One commission operation for (b). mode "approve": the product's `approve_commission` of a
    pending commission (its row lock, guarded transition, audit row and, with the ledger, the
    earn posting), the place where the product posts; the commissions are created first, outside
    the timing. mode "insert": a bare approved-Commission INSERT plus, with the ledger, its
    posting in the same transaction (the stricter ratio: the posting against the cheapest write).
    "without" replaces the posting with nothing in this client process only."""
    owner = Affiliate.objects.get(pk=owner_id)
    if not with_ledger:
        mock.patch.object(postings, "post_earned", lambda **_: None).start()  # this forked client only
    if mode == "insert":

        def insert() -> None:
            with atomic():
                row = commission(owner, Decimal("12.50"))
                postings.post_earned(commission=row, amount_minor=1_250)

        return insert
    admin = admin_user()
    pending = iter(pending_commissions(owner, ops))

    def approve() -> None:
        approve_commission(commission_id=next(pending), actor=admin)

    return approve


def pending_commissions(owner: Affiliate, count: int) -> list[int]:
    """`count` pending commissions of `owner`, in one INSERT (bench set-up, not timed)."""
    n = f"{os.getpid()}_{next(_serial):08d}"
    rows = Commission.objects.bulk_create(
        Commission(
            affiliate=owner,
            stripe_invoice_id=f"in_bench_p{n}_{i}",
            stripe_event_id=f"evt_bench_p{n}_{i}",
            amount=Decimal("12.50"),
            currency="EUR",
            rate=20,
        )
        for i in range(count)
    )
    return [row.pk for row in rows]


@dataclass(frozen=True)
class Run:
    ops: int
    seconds: float
    client_cpu: float  # seconds of CPU the client processes spent (user + system), all clients
    lock_waits: float  # share of sampled busy backends that were waiting on a lock (row, tuple, transaction id)

    @property
    def client_cpu_ms_per_op(self) -> float:
        return 1000 * self.client_cpu / self.ops

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.seconds


def _client(make: Callable[[], Callable[[], None]], ops: int, barrier: Any, results: "mp.Queue[tuple]") -> None:
    connections.close_all()  # never share the parent's connection with a forked child
    try:
        with tasks_queued_not_run():  # the approval's Wise dispatch is queued, not run
            one = make()
            warm()
            barrier.wait()
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(ops):
                one()
            results.put(("ok", start, time.perf_counter(), time.process_time() - cpu))
    except BaseException as exc:  # reported by the parent
        results.put(("error", repr(exc), 0.0, 0.0))
        raise
    finally:
        connections.close_all()


def run_clients(makers: list[Callable[[], Callable[[], None]]], ops: int) -> Run:
    connections.close_all()
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(len(makers)), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(make, ops, barrier, results)) for make in makers]
    sampler = LockSampler()
    for proc in procs:
        proc.start()
    sampler.start()
    try:
        outcomes = [results.get(timeout=600) for _ in procs]
    finally:
        sampler.stop()
    for proc in procs:
        proc.join()
    errors = [o[1] for o in outcomes if o[0] != "ok"]
    if errors:
        raise SystemExit(f"a client failed: {errors[0]}")
    start, end = min(o[1] for o in outcomes), max(o[2] for o in outcomes)
    return Run(
        ops=ops * len(makers), seconds=end - start, client_cpu=sum(o[3] for o in outcomes), lock_waits=sampler.share()
    )


class LockSampler(threading.Thread):
    """Every 10 ms, from its own connection: how many of the bench database's backends are busy
    (in a statement or a transaction) and how many of those wait on a heavyweight lock. A hot row
    shows up here as waits; a box short of CPU does not (its backends wait on their clients)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.busy = self.waiting = 0
        self._done = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            name = conn.info.dbname
            while not self._done.wait(0.01):
                busy, waiting = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE wait_event_type = 'Lock') FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid() AND state <> 'idle'",
                    [name],
                ).fetchone()
                self.busy, self.waiting = self.busy + busy, self.waiting + waiting

    def stop(self) -> None:
        self._done.set()
        self.join()

    def share(self) -> float:
        return self.waiting / self.busy if self.busy else 0.0


def hot_vs_distinct(clients: int, ops: int, repeat: int) -> dict[str, list[Run]]:
    admin = admin_user()
    runs: dict[str, list[Run]] = {"hot": [], "distinct": []}
    for r in range(repeat):
        hot = affiliate()
        earn(hot, Decimal(clients * ops + 100))  # 1.00 per op: the hot account never runs dry
        distinct = [affiliate() for _ in range(clients)]
        for owner in distinct:
            earn(owner, Decimal(ops + 100))
        order = ["hot", "distinct"] if r % 2 == 0 else ["distinct", "hot"]
        for variant in order:
            owners = [hot] * clients if variant == "hot" else distinct
            makers = [(lambda o=o: op_payout_cycle(o.pk, admin.pk)) for o in owners]
            runs[variant].append(run_clients(makers, ops))
            last = runs[variant][-1]
            print(f"  (a) {variant:8} run {r + 1}: {_line(last)}", flush=True)
    return runs


def with_vs_without(mode: str, clients: int, ops: int, repeat: int) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {}
    for r in range(repeat):
        owners = [affiliate() for _ in range(clients)]
        for owner in owners:
            earn(owner, Decimal("1.00"))  # accounts exist: steady state, not first postings
        order = [True, False] if r % 2 == 0 else [False, True]
        for with_ledger in order:
            name = f"{mode}:{'with' if with_ledger else 'without'}:{clients}"
            makers = [(lambda o=o, w=with_ledger: op_commission(o.pk, w, mode, ops)) for o in owners]
            runs.setdefault(name, []).append(run_clients(makers, ops))
            print(f"  (b) {name:18} run {r + 1}: {_line(runs[name][-1])}", flush=True)
    return runs


def _line(run: Run) -> str:
    load = os.getloadavg()[0]
    return (
        f"{run.ops_per_second:.0f} ops/s, client CPU {run.client_cpu_ms_per_op:.1f} ms/op, "
        f"lock waits {100 * run.lock_waits:.1f}% of busy backends, load {load:.1f}"
    )


# --- report ----------------------------------------------------------------------------------------


def _ratios(num: list[Run], den: list[Run]) -> list[float]:
    return [a.ops_per_second / b.ops_per_second for a, b in zip(num, den, strict=True)]


def _cell(values: list[float]) -> str:
    from harness import median

    return f"{median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def report_a(runs: dict[str, list[Run]], clients: int, ops: int) -> str:
    from harness import table

    ratio = _ratios(runs["hot"], runs["distinct"])
    verdict = "**met**" if sorted(ratio)[len(ratio) // 2] >= 0.5 else "**missed**"
    rows = [[v, clients, ops * clients, *_medians(runs[v])] for v in ("hot", "distinct")]
    head = ["accounts", "clients", "ops per run", "ops/s", "client CPU ms/op", "busy backends waiting on a lock"]
    return table(head, rows) + f"\n\nhot / distinct: {_cell(ratio)} (target >= 0.5x: {verdict})"


def report_b(runs: dict[str, list[Run]], counts: list[int]) -> str:
    from harness import table

    rows = []
    for mode in ("approve", "insert"):
        for clients in counts:
            ratio = _ratios(runs[f"{mode}:with:{clients}"], runs[f"{mode}:without:{clients}"])
            for variant in ("without", "with"):
                cells = _medians(runs[f"{mode}:{variant}:{clients}"])
                rows.append([mode, clients, variant, *cells, _cell(ratio) if variant == "with" else ""])
    head = [
        "operation",
        "clients",
        "ledger",
        "ops/s",
        "client CPU ms/op",
        "busy backends waiting on a lock",
        "with / without",
    ]
    lines = []
    for mode in ("approve", "insert"):
        ratio = _ratios(runs[f"{mode}:with:{counts[-1]}"], runs[f"{mode}:without:{counts[-1]}"])
        verdict = "**met**" if sorted(ratio)[len(ratio) // 2] >= 0.7 else "**missed**"
        lines.append(f"{mode}: with / without at {counts[-1]} clients {_cell(ratio)}: target >= 0.7x: {verdict}")
    return table(head, rows) + "\n\n" + "\n".join(lines)


def _medians(runs: list[Run]) -> list[str]:
    from harness import median

    return [
        f"{median(r.ops_per_second for r in runs):.0f}",
        f"{median(r.client_cpu_ms_per_op for r in runs):.1f}",
        f"{100 * median(r.lock_waits for r in runs):.1f}%",
    ]


def report_c() -> str:
    from harness import table

    from bench.proof.statements import capture

    rows, listings = [], []
    with tasks_queued_not_run():
        for build in OPERATIONS.values():
            operation = build()
            captured = capture(operation.run)
            inside, outside = captured.split()
            rows.append([operation.name, captured.statements, inside, outside, captured.kinds.count("BEGIN")])
            listings.append(f"{operation.name}:\n  " + "\n  ".join(captured.kinds))
    head = ["operation", "statements", "in a transaction", "outside (autocommit)", "transactions"]
    return table(head, rows) + "\n\n```\n" + "\n\n".join(listings) + "\n```"


def main() -> None:
    from django.core.management import call_command
    from harness import machine_table

    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--ops", type=int, default=40, help="payout cycles per client per run (a)")
    parser.add_argument("--earn-ops", type=int, default=120, help="commission postings per client per run (b)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    call_command("flush", interactive=False, verbosity=0)
    print(machine_table(), "\n", flush=True)
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}\n", flush=True)
    print("## (c) statements per operation\n\n" + report_c() + "\n", flush=True)
    runs_a = hot_vs_distinct(args.clients, args.ops, args.repeat)
    runs_b: dict[str, list[Run]] = {}
    for mode in ("approve", "insert"):
        for clients in (1, args.clients):
            runs_b.update(with_vs_without(mode, clients, args.earn_ops, args.repeat))
    print(
        f"\n## (a) reservation + approve + post, {args.clients} clients\n\n" + report_a(runs_a, args.clients, args.ops)
    )
    print("\n## (b) commission earned, with vs without the ledger\n\n" + report_b(runs_b, [1, args.clients]))
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
