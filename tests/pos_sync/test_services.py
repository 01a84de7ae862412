"""Orders and the queue's entrances: place, close (queues), enqueue, requeue; the partial UNIQUE."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from audit.models import AuditEntry
from core.actors import SystemActor
from core.errors import BusinessRuleViolation, Conflict, NotFound, PermissionDenied, ValidationError
from pos_sync.keys import square_order_key, square_payment_key, square_refund_key, sync_claim_key
from pos_sync.models import OrderStatus, SyncJob, SyncJobStatus
from pos_sync.providers import get_provider
from pos_sync.providers.base import ProviderError, to_minor_units
from pos_sync.services import close_order, enqueue_sync_job, place_order, requeue_sync_job, void_order
from tests.factories.accounts import SuperAdminFactory, UserFactory
from tests.factories.pos_sync import OrderFactory, PosConnectionFactory, SyncJobFactory

pytestmark = pytest.mark.django_db
ACTOR = SystemActor("test")


def test_place_order_computes_the_total_from_the_lines():
    connection = PosConnectionFactory()
    order = place_order(
        connection_id=connection.pk,
        table_id="T4",
        line_items=[
            {"name": "Soup", "quantity": 3, "unit_price": "4.50"},
            {"name": "Tea", "quantity": "1", "unit_price": 2},
        ],
        currency="eur",
        actor=ACTOR,
    )
    assert (order.total, order.currency, order.status) == (Decimal("15.50"), "EUR", OrderStatus.OPEN)
    assert order.line_items[1] == {"name": "Tea", "quantity": 1, "unit_price": "2"}


@pytest.mark.parametrize(
    "lines",
    [
        [],
        [{"name": "x", "quantity": 0, "unit_price": "1"}],
        [{"name": "x", "quantity": 1, "unit_price": "1.005"}],
        [{"quantity": 1, "unit_price": "1"}],
        [{"name": "x", "quantity": "two", "unit_price": "1"}],
    ],
)
def test_place_order_refuses_bad_lines(lines):
    with pytest.raises(ValidationError) as excinfo:
        place_order(
            connection_id=PosConnectionFactory().pk, table_id="T1", line_items=lines, currency="USD", actor=ACTOR
        )
    assert excinfo.value.code == "invalid_order_input"


def test_closing_an_order_queues_one_job_for_its_provider_in_the_same_transaction():
    order = OrderFactory(status=OrderStatus.OPEN)
    close_order(order_id=order.pk, actor=ACTOR)
    order.refresh_from_db()
    [job] = order.sync_jobs.all()
    assert (order.status, job.status, job.provider, job.enqueued_by) == ("closed", "pending", "square", "system:test")
    with pytest.raises(Conflict) as excinfo:  # closing acts on an open order: it is not one any more
        close_order(order_id=order.pk, actor=ACTOR)
    assert excinfo.value.details["current_status"] == "closed"
    assert order.sync_jobs.count() == 1


def test_a_voided_order_cannot_be_queued():
    order = OrderFactory(status=OrderStatus.OPEN)
    void_order(order_id=order.pk, actor=ACTOR)
    with pytest.raises(BusinessRuleViolation) as excinfo:
        enqueue_sync_job(order_id=order.pk, actor=ACTOR)
    assert excinfo.value.code == "order_not_closed"
    with pytest.raises(NotFound):
        enqueue_sync_job(order_id=10**9, actor=ACTOR)


def test_enqueue_twice_returns_the_live_job_and_a_finished_one_lets_a_new_job_in():
    order = OrderFactory()
    job, created = enqueue_sync_job(order_id=order.pk, actor=ACTOR)
    again, created_again = enqueue_sync_job(order_id=order.pk, actor=ACTOR)
    assert (created, created_again, again.pk) == (True, False, job.pk)

    SyncJob.objects.filter(pk=job.pk).update(status=SyncJobStatus.SUCCESS)  # history now
    newer, created_newer = enqueue_sync_job(order_id=order.pk, actor=ACTOR)
    assert created_newer and newer.pk != job.pk
    _other, created_other = enqueue_sync_job(order_id=order.pk, actor=ACTOR, provider="lightspeed")
    assert created_other  # one live job per (order, provider), not per order


def test_the_database_refuses_a_second_live_job_for_a_pair():
    job = SyncJobFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        SyncJob.objects.create(order=job.order, provider="square")
    SyncJob.objects.create(order=job.order, provider="square", status=SyncJobStatus.DEAD)  # history is fine


def test_requeue_moves_a_dead_job_back_to_pending_with_attempts_reset_and_audited():
    admin = SuperAdminFactory()
    job = SyncJobFactory(status=SyncJobStatus.DEAD, attempts=8, last_error_code="timeout", last_error="gone")
    requeue_sync_job(job_id=job.pk, actor=admin, reason="Square is back")
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("pending", 0)
    entry = AuditEntry.objects.get(object_id=str(job.pk))
    assert (entry.source, entry.target, entry.actor_label, entry.reason) == (
        "dead",
        "pending",
        admin.username,
        "Square is back",
    )


def test_requeue_is_refused_for_a_live_job_a_taken_pair_and_a_user_without_the_permission():
    pending = SyncJobFactory()
    with pytest.raises(Conflict) as excinfo:  # requeue acts on a dead job: this one is pending
        requeue_sync_job(job_id=pending.pk, actor=ACTOR)
    assert excinfo.value.details["current_status"] == "pending"

    dead = SyncJobFactory(order=pending.order, status=SyncJobStatus.DEAD)
    with pytest.raises(BusinessRuleViolation) as excinfo:
        requeue_sync_job(job_id=dead.pk, actor=ACTOR)  # the order already has a live job
    assert excinfo.value.code == "live_job_exists"
    dead.refresh_from_db()
    assert dead.status == SyncJobStatus.DEAD

    lonely = SyncJobFactory(status=SyncJobStatus.DEAD)
    with pytest.raises(PermissionDenied):
        requeue_sync_job(job_id=lonely.pk, actor=UserFactory(is_staff=True))
    assert AuditEntry.objects.count() == 0


def test_keys_are_stable_and_within_square_limits():
    assert square_order_key(42) == "posSync:42:square:order"
    assert square_payment_key(42) == "posSync:42:square:payment"
    assert len(square_payment_key(2**63 - 1)) <= 45
    assert square_refund_key("PAY123") == square_refund_key("PAY123") != square_refund_key("PAY124")
    assert len(square_refund_key("P" * 192)) == 36
    assert sync_claim_key(order_id=7, provider="square", day=__import__("datetime").date(2026, 1, 2)) == (
        "pos-sync:7:square:2026-01-02"
    )


def test_the_provider_registry_names_what_it_knows():
    assert get_provider("square").name == "square"
    with pytest.raises(ProviderError) as excinfo:
        get_provider("lightspeed")
    assert (excinfo.value.code, excinfo.value.retryable) == ("unknown_provider", False)


def test_minor_units_follow_the_currency():
    assert to_minor_units(Decimal("12.50"), "USD") == 1250
    assert to_minor_units(Decimal("1200"), "JPY") == 1200
    with pytest.raises(ProviderError):
        to_minor_units(Decimal("12.5"), "JPY")
