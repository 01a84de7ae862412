"""Run racers on separate threads, each with its own database connection, released together."""

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections


@dataclass
class Outcome:
    index: int
    result: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def race(racers: Sequence[Callable[[], Any]], *, timeout: float = 60.0) -> list[Outcome]:
    """Start one thread per racer; a Barrier releases them at once so they really overlap.

    Every thread closes its own connections when done (Django opens one per thread).
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
