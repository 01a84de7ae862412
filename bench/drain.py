"""Drain rate: N POS sync jobs pushed to the Square stand-in answering every request after a fixed
latency, by 1 to 4 worker processes, against the ideal.

    .venv/bin/python bench/drain.py [--jobs 2000] [--latency 0.02] [--workers 1,2,3,4] [--batch-size 50]

A push is two Square calls (CreateOrder, then CreatePayment for it), each answered after
--latency, so a job spends 2 x latency waiting on Square. Ideal = jobs x (2 x latency) / workers:
every worker waiting on Square all the time, with the database, the SDK and our own code free.
(Counting one latency per job instead would halve the ideal: both are printed.)

Each worker is its own process and connection running the production drain
(pos_sync.services.drain_due_jobs: skip_locked batches of --batch-size, a claim per job, the push
outside any transaction, the guarded success), until no job is due, as Celery workers running
overlapping beat ticks would. The stand-in runs in this process on loopback. Between runs the
jobs, claims, audit rows and the stand-in are reset. At the end of each run every job must be a
success and Square must hold exactly one order and one payment per job (else the run fails).
The database is bench_drain (flushed first; see harness.py).
"""

import argparse
import multiprocessing as mp
import time
from decimal import Decimal

from harness import load_now, machine_table, setup, table

setup("drain")

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from pos_sync.models import Order, PosConnection, SyncJob, SyncJobStatus  # noqa: E402
from pos_sync.selectors import due_jobs  # noqa: E402
from pos_sync.services import drain_due_jobs  # noqa: E402
from sandbox.core import RunningStandIn  # noqa: E402
from sandbox.square import SquareStandIn  # noqa: E402

TOKEN = "square-sandbox-token"  # what the stand-in accepts by default
LINES = [
    {"name": "Pasta", "quantity": 2, "unit_price": "12.50"},
    {"name": "Water", "quantity": 1, "unit_price": "3.00"},
]


def create_orders(count: int) -> None:
    places = PosConnection.objects.bulk_create(
        PosConnection(restaurant_name=f"Bench {i}", location_id=f"LBENCH{i}", access_token=TOKEN) for i in range(8)
    )
    Order.objects.bulk_create(
        (
            Order(
                connection=places[i % len(places)],
                table_id=f"T{i}",
                line_items=LINES,
                total=Decimal("28.00"),
                status="closed",
            )
            for i in range(count)
        ),
        batch_size=2000,
    )


def reset_jobs() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE pos_sync_syncjob, audit_claim, audit_auditentry, audit_beaconcount")
    now = timezone.now()
    order_ids = Order.objects.values_list("pk", flat=True)
    SyncJob.objects.bulk_create(
        (SyncJob(order_id=pk, provider="square", next_attempt_at=now) for pk in order_ids), batch_size=2000
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE pos_sync_syncjob")
        cursor.execute("VACUUM ANALYZE audit_claim")


def _worker(square_url: str, batch_size: int, start: float, results: "mp.Queue[dict]") -> None:
    connections.close_all()  # never share the parent's connection with a forked child
    with override_settings(SQUARE_BASE_URL=square_url, SQUARE_TIMEOUT_SECONDS=10.0):
        while time.time() < start:
            time.sleep(0.001)
        cpu = time.process_time()
        totals = {"succeeded": 0, "failed": 0, "conflicts": 0, "batches": 0}
        while due_jobs(now=timezone.now()).exists():
            result = drain_due_jobs(batch_size=batch_size, time_budget=3600)
            for name in ("succeeded", "failed", "conflicts"):
                totals[name] += getattr(result, name)
            totals["batches"] += 1
        totals["finished"] = time.time()
        totals["cpu"] = time.process_time() - cpu
    connections.close_all()
    results.put(totals)


def run(square: RunningStandIn, workers: int, batch_size: int, latency: float) -> tuple[float, dict]:
    reset_jobs()
    square.app.reset()
    square.app.latency = latency
    connections.close_all()
    results: mp.Queue[dict] = mp.Queue()
    start = time.time() + 1.0
    procs = [mp.Process(target=_worker, args=(square.url, batch_size, start, results)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    totals = [results.get(timeout=3600) for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = max(t["finished"] for t in totals) - start
    summed = {k: sum(t[k] for t in totals) for k in ("succeeded", "failed", "conflicts", "batches", "cpu")}
    return elapsed, summed


def check(square: RunningStandIn, jobs: int) -> None:
    """Every job pushed once: all successes here, one order and one payment per job at Square."""
    done = SyncJob.objects.filter(status=SyncJobStatus.SUCCESS).count()
    state = square.app.state()
    orders, payments = len(state.get("orders", [])), len(state.get("payments", []))
    assert done == jobs, f"{done} of {jobs} jobs succeeded"
    assert orders == jobs and payments == jobs, f"Square holds {orders} orders and {payments} payments for {jobs}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--workers", default="1,2,3,4")
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    mp.set_start_method("fork")
    call_command("flush", interactive=False, verbosity=0)
    create_orders(args.jobs)
    print(machine_table(), "\n", flush=True)
    square = RunningStandIn(SquareStandIn())
    rows = []
    try:
        for workers in [int(w) for w in args.workers.split(",")]:
            elapsed, totals = run(square, workers, args.batch_size, args.latency)
            check(square, args.jobs)
            ideal = args.jobs * 2 * args.latency / workers
            rows.append(
                [
                    workers,
                    f"{elapsed:.1f}",
                    f"{ideal:.1f}",
                    f"{elapsed / ideal:.2f}x",
                    f"{elapsed / (ideal / 2):.2f}x",
                    f"{args.jobs / elapsed:.0f}",
                    f"{totals['cpu'] / args.jobs * 1000:.1f}",
                    totals["batches"],
                    totals["conflicts"],
                ]
            )
            print(f"  {workers} worker(s): {elapsed:.1f} s (load {load_now():.2f})", flush=True)
    finally:
        square.stop()
    print()
    print(
        f"{args.jobs} jobs, stand-in latency {args.latency * 1000:g} ms per request (2 requests per job), "
        f"batch size {args.batch_size}"
    )
    print()
    headers = ["workers", "time s", "ideal s (2 x latency per job)", "time / ideal", "time / (1 latency per job)"]
    print(table([*headers, "jobs/s", "worker CPU ms/job", "drain calls", "lost races"], rows))


if __name__ == "__main__":
    main()
