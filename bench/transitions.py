"""Guarded transition + audit row per second: the project's helper against five other ways.

    .venv/bin/python bench/transitions.py [--seconds 1.5] [--repeat 5] [--clients 1,4,16] [--rounds 200]

Variants (each does "open -> approved, plus one audit row" for one row):
  helper               audit.transitions.apply_transition (django-fsm legality, guarded UPDATE,
                       transition_committed signal -> audit row, on_commit and beacon plumbing)
  a_sql                the same work by hand through psycopg: BEGIN, guarded UPDATE, INSERT, COMMIT
  b_orm                filter(pk=, status=prior).update() + AuditEntry create() in atomic()
  c_select_for_update  select_for_update().get(), check, save(), audit row, in atomic()
  d_concurrent_mixin   django-fsm's ConcurrentTransitionMixin: get(), transition, save(), audit row
  e_naive              get(), check, save(), audit row, no transaction: fast and wrong

Throughput: every client is its own process with its own connection, working through its own rows
(no contention: this measures the cost of the work). The variants run interleaved, `--repeat`
times, in a rotating order, so every ratio is taken between runs made seconds apart under the same
load; the tables show medians. Each run also measures the CPU an operation cost (the client process
plus its PostgreSQL backend, from /proc): other work on the machine lowers ops/s but hardly CPU
per op, so the CPU ratios corroborate the throughput ratios on a shared box.

Contention: `--rounds` rounds of two racers (threads, one connection each, released by a barrier)
on one row per variant, counting rounds with two winners, and the statements each loser ran
(BEGIN/COMMIT/ROLLBACK not counted).

The database is bench_transitions on BENCH_DATABASE_URL's server (see harness.py). Only same-run
ratios mean anything: absolute figures depend on the machine and its load.
"""

import argparse
import multiprocessing as mp
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import load_now, machine_table, median, setup, table

DATABASE_URL = setup("transitions")

import psycopg  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_fsm import ConcurrentTransition  # noqa: E402

from audit.models import AuditEntry  # noqa: E402
from audit.transitions import apply_transition  # noqa: E402
from bench.primitives.models import ConcurrentTicket, Ticket  # noqa: E402
from core.actors import SystemActor  # noqa: E402
from core.errors import Conflict  # noqa: E402

ACTOR = SystemActor("bench")
ROWS = 120_000
TARGETS = [  # (numerator, denominator, minimum ratio at every client count)
    ("helper", "b_orm", 0.9),
    ("helper", "c_select_for_update", 1.3),
    ("helper", "d_concurrent_mixin", 1.3),
]
EXTRA_RATIOS = [("b_orm", "a_sql"), ("helper", "a_sql"), ("c_select_for_update", "a_sql")]


def _audit(model: type, pk: int) -> None:
    AuditEntry.objects.create(
        content_type=ContentType.objects.get_for_model(model),
        object_id=str(pk),
        field="status",
        transition="approve",
        source="open",
        target="approved",
        actor_label=ACTOR.label,
        at=timezone.now(),
    )


def op_helper(pk: int) -> bool:
    try:
        apply_transition(instance=Ticket(pk=pk), transition="approve", actor=ACTOR)
    except Conflict:
        return False
    return True


def op_orm(pk: int) -> bool:
    with transaction.atomic():
        won = Ticket.objects.filter(pk=pk, status="open").update(status="approved") == 1
        if won:
            _audit(Ticket, pk)
    return won


def op_select_for_update(pk: int) -> bool:
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=pk)
        if ticket.status != "open":
            return False
        ticket.approve()
        ticket.save()
        _audit(Ticket, pk)
    return True


def op_concurrent_mixin(pk: int) -> bool:
    try:
        with transaction.atomic():
            ticket = ConcurrentTicket.objects.get(pk=pk)
            if ticket.status != "open":
                return False
            ticket.approve()
            ticket.save()
            _audit(ConcurrentTicket, pk)
    except ConcurrentTransition:
        return False
    return True


def op_naive(pk: int) -> bool:
    ticket = Ticket.objects.get(pk=pk)
    if ticket.status != "open":
        return False
    ticket.approve()
    ticket.save()
    _audit(Ticket, pk)
    return True


class RawSql:
    """(a): the same work by hand through psycopg: BEGIN, guarded UPDATE, INSERT, COMMIT."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.local = threading.local()  # one connection per racer thread or client process

    def connect(self) -> None:
        if getattr(self.local, "pid", None) != os.getpid():
            self.local.pid = os.getpid()
            self.local.conn = psycopg.connect(DATABASE_URL)
            self.local.content_type_id = ContentType.objects.get_for_model(Ticket).pk
            self.local.log = []

    def __call__(self, pk: int) -> bool:
        self.connect()
        with self.local.conn.transaction(), self.local.conn.cursor() as cur:
            cur.execute(f"UPDATE {self.table} SET status = 'approved' WHERE id = %s AND status = 'open'", [pk])
            self.local.log.append("guarded UPDATE")
            won = cur.rowcount == 1
            if won:
                cur.execute(
                    "INSERT INTO audit_auditentry (content_type_id, object_id, field, transition, source, target, "
                    "actor_label, reason, correlation_id, at) VALUES (%s, %s, 'status', 'approve', 'open', "
                    "'approved', %s, '', '', now())",
                    [self.local.content_type_id, str(pk), ACTOR.label],
                )
                self.local.log.append("INSERT")
        return won

    def take_log(self) -> list[str]:
        log, self.local.log = self.local.log, []
        return log

    def close(self) -> None:
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            conn.close()
            self.local.pid = None


VARIANTS: dict[str, Callable[[int], bool]] = {
    "helper": op_helper,
    "a_sql": RawSql(Ticket._meta.db_table),
    "b_orm": op_orm,
    "c_select_for_update": op_select_for_update,
    "d_concurrent_mixin": op_concurrent_mixin,
    "e_naive": op_naive,
}
MODEL_OF = {"d_concurrent_mixin": ConcurrentTicket}


def prepare_rows() -> None:
    for model in (Ticket, ConcurrentTicket):
        missing = ROWS - model.objects.count()
        if missing > 0:
            model.objects.bulk_create([model() for _ in range(missing)], batch_size=5000)


def reset_rows() -> None:
    with connection.cursor() as cur:
        for model in (Ticket, ConcurrentTicket):
            cur.execute(f"UPDATE {model._meta.db_table} SET status = 'open' WHERE status <> 'open'")
        cur.execute("TRUNCATE audit_auditentry, audit_beaconcount")
        # The resets leave dead row versions behind: without this, later runs would pay for
        # earlier ones and the order of the variants would show in the figures.
        for model in (Ticket, ConcurrentTicket):
            cur.execute(f"VACUUM ANALYZE {model._meta.db_table}")


# --- throughput -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """One client count, one variant: ops/s summed over the clients, and the CPU each op cost the
    client processes plus their PostgreSQL backends. Other work on the machine lowers the first,
    hardly the second: it is the noise-robust view of the same comparison."""

    rate: float
    cpu_per_op: float


def _backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _backend_pid(op: Callable[[int], bool]) -> int:
    if isinstance(op, RawSql):
        return op.local.conn.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _client(variant: str, ids: list[int], seconds: float, start: float, results: "mp.Queue[tuple]") -> None:
    connections.close_all()  # the parent's connection must not be shared with a forked child
    op = VARIANTS[variant]
    op(ids[0])  # warm up: connection, caches
    backend = _backend_pid(op)
    while time.time() < start:
        time.sleep(0.001)
    began = time.time()  # not `start`: a client that was late to start must not count the wait
    cpu, backend_cpu = time.process_time(), _backend_cpu(backend)
    deadline = began + seconds
    done = 0
    for pk in ids[1:]:
        op(pk)
        done += 1
        if time.time() >= deadline:
            break
    elapsed = time.time() - began
    used = time.process_time() - cpu + _backend_cpu(backend) - backend_cpu
    results.put((done / elapsed, done, used))


def throughput(variant: str, clients: int, seconds: float) -> Run:
    reset_rows()
    model = MODEL_OF.get(variant, Ticket)
    ids = list(model.objects.order_by("pk").values_list("pk", flat=True))
    connections.close_all()
    results: mp.Queue[tuple] = mp.Queue()
    start = time.time() + 1.0 + 0.15 * clients  # every client connected and warmed up before
    procs = [
        mp.Process(target=_client, args=(variant, ids[i::clients], seconds, start, results)) for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join()
    ops = sum(done for _, done, _ in outcomes)
    return Run(rate=sum(rate for rate, _, _ in outcomes), cpu_per_op=sum(used for _, _, used in outcomes) / ops)


def run_throughput(counts: list[int], seconds: float, repeat: int) -> dict[str, dict[int, list[Run]]]:
    runs: dict[str, dict[int, list[Run]]] = defaultdict(lambda: defaultdict(list))
    names = list(VARIANTS)
    for rep in range(repeat):
        for step, clients in enumerate(counts):
            shift = (rep * len(counts) + step) % len(names)
            for variant in names[shift:] + names[:shift]:  # rotate: no variant always runs first
                runs[variant][clients].append(throughput(variant, clients, seconds))
        print(f"  repetition {rep + 1}/{repeat} done (load {load_now():.2f}, this bench included)", flush=True)
    return runs


# --- contention -----------------------------------------------------------------------------
def contention(variant: str, rounds: int) -> tuple[int, dict[str, int]]:
    """Two racers per row, `rounds` rows. Returns (rounds with two winners, loser statement tally)."""
    reset_rows()
    model = MODEL_OF.get(variant, Ticket)
    ids = list(model.objects.order_by("pk").values_list("pk", flat=True)[:rounds])
    doubles = 0
    losers: dict[str, int] = defaultdict(int)
    for pk in ids:
        outcomes = _race_once(variant, pk)
        doubles += sum(won for won, _ in outcomes) > 1
        for won, statements in outcomes:
            if not won:
                losers["losers"] += 1
                for kind in statements:
                    losers[kind] += 1
    return doubles, losers


def _race_once(variant: str, pk: int) -> list[tuple[bool, list[str]]]:
    barrier = threading.Barrier(2)
    outcomes: list[tuple[bool, list[str]]] = []
    op = VARIANTS[variant]

    def racer() -> None:
        statements: list[str] = []

        def record(execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
            statements.append(_kind(sql))
            return execute(sql, params, many, context)

        try:
            connection.ensure_connection()  # connect before the barrier: the racers must overlap
            if isinstance(op, RawSql):
                op.connect()
                op.take_log()
            with connection.execute_wrapper(record):
                barrier.wait()
                won = op(pk)
            if isinstance(op, RawSql):
                statements.extend(op.take_log())
            outcomes.append((won, statements))
        finally:
            connections.close_all()
            getattr(op, "close", lambda: None)()

    threads = [threading.Thread(target=racer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def _kind(sql: str) -> str:
    text = sql.lstrip().upper()
    if "AUDIT_BEACONCOUNT" in text:
        return "beacon counter upsert (after the transaction)"
    if text.startswith("UPDATE"):
        return "guarded UPDATE" if "WHERE" in text and "STATUS" in text.split("WHERE", 1)[1] else "UPDATE"
    if text.startswith("SELECT") and "FOR UPDATE" in text:
        return "SELECT FOR UPDATE"
    if text.startswith("SELECT"):
        return "SELECT"
    return text.split(None, 1)[0]


# --- report ---------------------------------------------------------------------------------
def ratios(runs: dict, num: str, den: str, clients: int) -> list[float]:
    """Same-run throughput ratios: repetition i of `num` against repetition i of `den`."""
    return [a.rate / b.rate for a, b in zip(runs[num][clients], runs[den][clients], strict=True)]


def cpu_ratios(runs: dict, num: str, den: str, clients: int) -> list[float]:
    """How many times less CPU per op `num` needs than `den` (same runs)."""
    return [b.cpu_per_op / a.cpu_per_op for a, b in zip(runs[num][clients], runs[den][clients], strict=True)]


def report(runs: dict, races: dict, counts: list[int], args: argparse.Namespace) -> str:
    headers = ["variant", *(f"{c} client{'s' if c > 1 else ''}" for c in counts)]
    out = [f"### Throughput (ops/s, median of {args.repeat} interleaved runs of {args.seconds:g} s)", ""]
    rows = []
    for variant in VARIANTS:
        doubles, losers = races[variant]
        rates = [f"{median(r.rate for r in runs[variant][c]):.0f}" for c in counts]
        rows.append([variant, *rates, f"{doubles} / {args.rounds}", _loser_cost(losers)])
    out.append(table([*headers, "double winners", "statements per lost race"], rows))
    out += ["", "### Throughput ratios (median of the same-run ratios; min-max in brackets)", ""]
    ratio_rows = []
    for num, den, minimum in TARGETS:
        cells = [_ratio_cell(ratios(runs, num, den, c)) for c in counts]
        met = all(median(ratios(runs, num, den, c)) >= minimum for c in counts)
        ratio_rows.append([f"{num} / {den}", *cells, f">= {minimum}x: {'met' if met else 'MISSED'}"])
    for num, den in EXTRA_RATIOS:
        ratio_rows.append([f"{num} / {den}", *(_ratio_cell(ratios(runs, num, den, c)) for c in counts), ""])
    out.append(table(["ratio", *headers[1:], "target"], ratio_rows))
    out += ["", "### CPU per operation (us: client process + its PostgreSQL backend; median)", ""]
    cpu_rows = [[v, *(f"{median(r.cpu_per_op for r in runs[v][c]) * 1e6:.0f}" for c in counts)] for v in VARIANTS]
    out.append(table(headers, cpu_rows))
    out += ["", "### CPU ratios (times less CPU per op than the denominator; robust to other load)", ""]
    cpu_ratio_rows = [
        [f"{num} vs {den}", *(_ratio_cell(cpu_ratios(runs, num, den, c)) for c in counts)] for num, den, _ in TARGETS
    ]
    out.append(table(["ratio", *headers[1:]], cpu_ratio_rows))
    return "\n".join(out)


def _ratio_cell(values: list[float]) -> str:
    return f"{median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def _loser_cost(losers: dict[str, int]) -> str:
    count = losers.get("losers", 0)
    if not count:
        return "no loser"
    kinds = [(k, v) for k, v in losers.items() if k != "losers"]  # in the order they were sent
    return ", ".join(f"{v / count:g} {k}" for k, v in kinds) or "0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    mp.set_start_method("fork")
    prepare_rows()
    counts = [int(c) for c in args.clients.split(",")]
    print(machine_table(), "\n", flush=True)
    started = time.time()
    runs = run_throughput(counts, args.seconds, args.repeat)
    races = {v: contention(v, args.rounds) for v in VARIANTS}
    print()
    print(report(runs, races, counts, args))
    print(f"\n{time.time() - started:.0f} s; load average at the end: {load_now():.2f}")


if __name__ == "__main__":
    main()
