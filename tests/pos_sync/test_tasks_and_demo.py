"""The beat task under its scheduled name, and the demo seed (idempotent, drainable)."""

from io import StringIO

import pytest
from django.conf import settings

from config.celery import app
from pos_sync import demo
from pos_sync.models import Order, PosConnection, SyncJob, SyncJobStatus
from pos_sync.tasks import push_pending_orders_task
from tests.factories.pos_sync import SyncJobFactory

pytestmark = pytest.mark.django_db


def test_the_scheduled_name_is_the_registered_drain_task(square):
    scheduled = settings.CELERY_BEAT_SCHEDULE["push-pending-orders"]["task"]
    assert scheduled == "pos_sync.tasks.push_pending_orders"
    assert app.tasks[scheduled].acks_late is True
    job = SyncJobFactory()

    summary = push_pending_orders_task.delay().get()

    job.refresh_from_db()
    assert summary == {
        "selected": 1,
        "taken": 1,
        "succeeded": 1,
        "failed": 0,
        "dead": 0,
        "conflicts": 0,
        "handed_back": 0,
        "lost": 0,
    }
    assert job.status == SyncJobStatus.SUCCESS


def test_the_demo_seed_is_idempotent_and_its_queue_drains(square):
    demo.seed(stdout=StringIO())
    demo.seed(stdout=StringIO())
    assert PosConnection.objects.count() == 3
    assert Order.objects.count() == 9
    assert SyncJob.objects.count() == 6

    summary = push_pending_orders_task.delay().get()

    assert (summary["succeeded"], summary["dead"]) == (5, 1)
    dead = SyncJob.objects.get(status=SyncJobStatus.DEAD)
    assert dead.last_error_code == "missing_credentials"
    assert len(square.app.orders) == len(square.app.payments) == 5
