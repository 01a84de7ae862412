"""core.enqueue: the one way services hand work to Celery, and its one broker-failure policy."""

import pytest
from celery.app.task import Task
from django.db import transaction
from kombu.exceptions import OperationalError

from audit.models import BeaconCount
from core.enqueue import enqueue, enqueue_on_commit, registered_task

pytestmark = pytest.mark.django_db(transaction=True)
TASK = "audit.tasks.raise_beacon_alerts"  # any registered task: the test settings run it eagerly


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, tuple]]:
    """What reached the broker (apply_async), instead of running it."""
    calls: list[tuple[str, tuple]] = []
    monkeypatch.setattr(Task, "apply_async", lambda self, args=(), **_: calls.append((self.name, tuple(args))))
    return calls


def test_enqueue_on_commit_sends_after_the_commit_and_never_for_a_rollback(sent):
    with transaction.atomic():
        enqueue_on_commit(TASK, 7)
        assert sent == []  # nothing leaves before the commit
    assert sent == [(TASK, (7,))]

    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_on_commit(TASK, 8)
        raise RuntimeError("rolled back")
    assert sent == [(TASK, (7,))]


def test_a_broker_that_is_down_leaves_a_beacon_not_a_silent_loss(monkeypatch):
    def broker_down(self, *args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(Task, "apply_async", broker_down)

    assert enqueue(TASK, 42) is False
    assert BeaconCount.objects.get(kind="enqueue_failed").count == 1


def test_an_unknown_task_name_is_a_programming_error_not_a_silent_loss():
    with pytest.raises(KeyError):
        registered_task("payouts.tasks.no_such_task")
