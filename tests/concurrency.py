"""Run racers on separate threads, each with its own database connection, released together."""

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, connections


@dataclass
class Outcome:
    index: int
    result: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def race(racers: Sequence[Callable[[], Any]], *, timeout: float = 300.0) -> list[Outcome]:
    """Start one thread per racer; a Barrier releases them at once so they really overlap.

    Every thread closes its own connections when done (Django opens one per thread). `timeout`
    (for the barrier, and for each racer to finish) only catches a deadlock: generous, so that a
    busy machine is never mistaken for one; it costs time only when something is truly stuck.
    """
    barrier = threading.Barrier(len(racers), timeout=timeout)
    outcomes = [Outcome(index=i) for i in range(len(racers))]

    def run(i: int, racer: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            outcomes[i].result = racer()
        except BaseException as exc:
            outcomes[i].error = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, r), daemon=True) for i, r in enumerate(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError("a racer did not finish in time (deadlock?)")
    return outcomes


def wait_for_a_lock_waiter(*, timeout: float = 120.0) -> None:
    """Poll until some session of this test database waits on a lock: the racer held back is then
    really blocked behind the holder, however fast or slow the machine. `timeout` only catches a
    racer that never blocks (or never runs): generous, it costs time only when that happens."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            # Inside a transaction PostgreSQL reads the view once and keeps it: drop that each time.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no session waited on a lock within {timeout:.0f} s")
            time.sleep(0.01)
