"""The services' transaction: `atomic()`, and the hooks that run whenever a unit of work ends.

A lost race raises Conflict and rolls its transaction back; what must survive that rollback (the
race beacon counters that audit queues) is written by an exit hook once no transaction is open.
Apps above core register such hooks in their AppConfig.ready(); core itself imports no app.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import transaction

ExitHook = Callable[[], None]
_exit_hooks: list[ExitHook] = []


def on_unit_of_work_exit(hook: ExitHook) -> ExitHook:
    """Register `hook` to run after every `atomic()` and at the end of every API error and admin
    message (the places a rolled-back unit of work surfaces). Registering twice is harmless."""
    if hook not in _exit_hooks:
        _exit_hooks.append(hook)
    return hook


def run_exit_hooks() -> None:
    for hook in _exit_hooks:
        hook()


@contextmanager
def atomic() -> Iterator[None]:
    """transaction.atomic() for services: on the way out, commit or rollback, it runs the exit
    hooks, so a lost race is counted even though the Conflict it raised rolled the transaction back."""
    try:
        with transaction.atomic():
            yield
    finally:
        run_exit_hooks()
