"""Guarded transition + audit row per second, the project's helper against five other ways.

    .venv/bin/python bench/transitions.py [--seconds 3] [--clients 1,4,16] [--rounds 200]

Runs on PostgreSQL (BENCH_DATABASE_URL, default postgres://root@127.0.0.1:5432/bench_backoffice,
created and migrated if missing). Every client is its own process with its own connection, each
working through its own rows (throughput without contention); then a contention run releases two
racers on the same row, `--rounds` times, and counts rounds with two winners. Only same-run ratios
mean anything: absolute figures depend on the machine and its load.
"""

import argparse
import multiprocessing as mp
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/bench_backoffice")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_fsm import ConcurrentTransition  # noqa: E402

from audit.actors import SystemActor  # noqa: E402
from audit.errors import Conflict  # noqa: E402
from audit.models import AuditEntry  # noqa: E402
from audit.transitions import apply_transition  # noqa: E402
from tests.primitives.models import ConcurrentTicket, Ticket  # noqa: E402

ACTOR = SystemActor("bench")
ROWS = 120_000


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

    def __call__(self, pk: int) -> bool:
        if getattr(self.local, "pid", None) != os.getpid():
            self.local.pid = os.getpid()
            self.local.conn = psycopg.connect(os.environ["DATABASE_URL"])
            self.local.content_type_id = ContentType.objects.get_for_model(Ticket).pk
        with self.local.conn.transaction(), self.local.conn.cursor() as cur:
            cur.execute(f"UPDATE {self.table} SET status = 'approved' WHERE id = %s AND status = 'open'", [pk])
            won = cur.rowcount == 1
            if won:
                cur.execute(
                    "INSERT INTO audit_auditentry (content_type_id, object_id, field, transition, source, target, "
                    "actor_label, reason, correlation_id, at) VALUES (%s, %s, 'status', 'approve', 'open', "
                    "'approved', %s, '', '', now())",
                    [self.local.content_type_id, str(pk), ACTOR.label],
                )
        return won

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


def prepare_database() -> None:
    admin_url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    name = settings.DATABASES["default"]["NAME"]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    call_command("migrate", verbosity=0)
    for model in (Ticket, ConcurrentTicket):
        missing = ROWS - model.objects.count()
        if missing > 0:
            model.objects.bulk_create([model() for _ in range(missing)], batch_size=5000)


def reset_rows() -> None:
    with connection.cursor() as cur:
        for model in (Ticket, ConcurrentTicket):
            cur.execute(f"UPDATE {model._meta.db_table} SET status = 'open' WHERE status <> 'open'")
        cur.execute("TRUNCATE audit_auditentry, audit_beaconcount")


def _client(variant: str, ids: list[int], seconds: float, start: float, results: "mp.Queue[int]") -> None:
    connections.close_all()
    op = VARIANTS[variant]
    op(ids[0])  # warm up: connection, caches
    done = 1
    while time.time() < start:
        time.sleep(0.001)
    deadline = start + seconds
    for pk in ids[1:]:
        op(pk)
        done += 1
        if time.time() >= deadline:
            break
    results.put(done - 1)


def throughput(variant: str, clients: int, seconds: float) -> float:
    reset_rows()
    model = MODEL_OF.get(variant, Ticket)
    ids = list(model.objects.order_by("pk").values_list("pk", flat=True))
    connections.close_all()
    results: mp.Queue[int] = mp.Queue()
    start = time.time() + 1.0 + 0.05 * clients
    procs = [
        mp.Process(target=_client, args=(variant, ids[i::clients], seconds, start, results)) for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    total = sum(results.get(timeout=seconds + 120) for _ in procs)
    for proc in procs:
        proc.join()
    return total / seconds


def double_winners(variant: str, rounds: int) -> int:
    reset_rows()
    model = MODEL_OF.get(variant, Ticket)
    ids = list(model.objects.order_by("pk").values_list("pk", flat=True)[:rounds])
    doubles = 0
    for pk in ids:
        barrier = threading.Barrier(2)
        wins: list[bool] = []

        def racer(pk: int = pk, barrier: threading.Barrier = barrier, wins: list[bool] = wins) -> None:
            try:
                barrier.wait()
                wins.append(VARIANTS[variant](pk))
            finally:
                connections.close_all()
                getattr(VARIANTS[variant], "close", lambda: None)()

        threads = [threading.Thread(target=racer) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        doubles += sum(wins) > 1
    return doubles


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    mp.set_start_method("fork")
    prepare_database()
    counts = [int(c) for c in args.clients.split(",")]
    rates = {v: {c: throughput(v, c, args.seconds) for c in counts} for v in VARIANTS}
    doubles = {v: double_winners(v, args.rounds) for v in VARIANTS}
    print(report(rates, doubles, counts, args))


def report(rates: dict, doubles: dict, counts: list[int], args: argparse.Namespace) -> str:
    head = "| variant | " + " | ".join(f"{c} client(s) ops/s" for c in counts) + f" | double winners / {args.rounds} |"
    lines = [head, "|" + " --- |" * (len(counts) + 2)]
    for variant, by_clients in rates.items():
        cells = " | ".join(f"{by_clients[c]:.0f}" for c in counts)
        lines.append(f"| {variant} | {cells} | {doubles[variant]} |")
    lines += ["", "| ratio | " + " | ".join(f"{c}" for c in counts) + " |", "|" + " --- |" * (len(counts) + 1)]
    for name, num, den in [
        ("helper / b_orm", "helper", "b_orm"),
        ("helper / c_select_for_update", "helper", "c_select_for_update"),
        ("helper / d_concurrent_mixin", "helper", "d_concurrent_mixin"),
        ("b_orm / a_sql", "b_orm", "a_sql"),
        ("helper / a_sql", "helper", "a_sql"),
    ]:
        lines.append(f"| {name} | " + " | ".join(f"{rates[num][c] / rates[den][c]:.2f}x" for c in counts) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
