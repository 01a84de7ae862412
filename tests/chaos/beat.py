"""A beat scheduler on an accelerated clock, as its own process: `python -m tests.chaos.beat ...`.

It does what `celery beat` does on every due tick (publish the periodic tasks' messages on the
broker) at shared wall-clock instants, so two of them started with the same --start tick together,
which is the worst case for "two beats by mistake". Prints one JSON line with what it sent.
"""

import argparse
import json
import random
import time
from collections import Counter

from celery import Celery


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.beat")
    parser.add_argument("--name", required=True)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--start", type=float, required=True, help="epoch seconds of the first tick (shared)")
    parser.add_argument("--every", type=float, required=True, help="real seconds between ticks")
    parser.add_argument("--ticks", type=int, required=True)
    parser.add_argument("--task", action="append", required=True, help="a periodic task, due in turn (repeat)")
    args = parser.parse_args()

    app = Celery(f"beat-{args.name}", broker=args.broker, set_as_current=False)
    app.conf.broker_connection_retry_on_startup = True
    jitter = random.Random(args.name)
    sent: Counter[str] = Counter()
    with app.producer_or_acquire() as producer:
        for tick in range(args.ticks):
            # A real beat wakes within milliseconds of the due time: the two schedulers collide.
            due = args.start + tick * args.every + jitter.uniform(0, 0.02)
            time.sleep(max(0.0, due - time.time()))
            # One due entry per tick, in turn: both schedulers publish the same task at the same
            # instant, so the two workers run the same periodic task against the same work.
            task = args.task[tick % len(args.task)]
            app.send_task(task, producer=producer)
            sent[task] += 1
    print(json.dumps({"name": args.name, "ticks": args.ticks, "sent": dict(sent)}), flush=True)


if __name__ == "__main__":
    main()
