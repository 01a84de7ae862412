"""Handing work to Celery: the one way a service enqueues a task, and the one broker-failure policy.

Services name tasks by their registered name (each app's tasks module imports its services, so a
service importing its tasks module would be a cycle). The enqueue runs after the transaction
commits, so a task never reads a row its caller might still roll back.

If the broker refuses the message, the committed change stands: the failure is logged and
`core.signals.enqueue_failed` is sent (audit counts it as the `enqueue_failed` beacon), and the
domain's sweeper beat job finds the row that should have been dispatched and enqueues it again.
That is also why a process dying right after commit (which loses the on_commit callback) costs a
delay, never the work.
"""

import functools
import threading

import structlog
from celery import current_app
from celery.app.task import Task
from django.db import transaction
from kombu.exceptions import OperationalError

from core.signals import enqueue_failed

logger = structlog.get_logger(__name__)

# What a broker that is down or unreachable raises from apply_async (kombu wraps most connection
# errors in OperationalError; a refused socket can surface as OSError).
BROKER_ERRORS = (OperationalError, OSError)
# One discovery at a time: threads that enqueue at once would otherwise see a tasks module that
# another thread is still importing, and its task as "not registered".
_discovery = threading.Lock()


def enqueue_on_commit(task_name: str, *args: object) -> None:
    """Send `task_name(*args)` once the current transaction commits (at once outside one)."""
    transaction.on_commit(functools.partial(enqueue, task_name, *args))


def enqueue(task_name: str, *args: object) -> bool:
    """Send `task_name(*args)` now. False if the broker refused it (logged, beacon, swept later)."""
    task = registered_task(task_name)
    try:
        task.apply_async(args=args)
    except BROKER_ERRORS:
        logger.exception("enqueue_failed", task_name=task_name, task_args=args)
        enqueue_failed.send(sender=Task, task_name=task_name, args=args)
        return False
    return True


def registered_task(task_name: str) -> Task:
    """The task registered under `task_name`. Celery discovers the apps' tasks modules lazily (in
    a worker at start-up); a web process discovers them on its first enqueue."""
    if task_name not in current_app.tasks:
        with _discovery:
            if task_name not in current_app.tasks:
                current_app.loader.import_default_modules()
    return current_app.tasks[task_name]
