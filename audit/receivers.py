"""The audit receiver (the one signal receiver with work in it: it writes the audit row) and the
task/request teardown hooks that tag work with its id and flush queued beacon counters."""

from functools import cache
from typing import Any

import structlog
from celery.signals import task_postrun, task_prerun
from django.contrib.contenttypes.models import ContentType
from django.core.signals import request_finished
from django.db import connections, models, router
from django.dispatch import receiver

from audit.beacons import emit_beacon, flush_pending_beacons
from audit.models import AuditEntry
from audit.signals import transition_committed
from core.actors import Actor, actor_label, actor_user
from core.context import correlation_id, current_correlation_id
from core.signals import enqueue_failed


@receiver(transition_committed, dispatch_uid="audit.write_audit_entry")
def write_audit_entry(
    sender: type[models.Model],
    instance: models.Model,
    field: str,
    transition: str,
    source: str,
    target: str,
    actor: Actor,
    reason: str,
    at: Any,
    **_: Any,
) -> None:
    insert_audit_entry(
        AuditEntry(
            content_type=ContentType.objects.get_for_model(sender),
            object_id=str(instance.pk),
            field=field,
            transition=transition,
            source=source,
            target=target,
            actor=actor_user(actor),
            actor_label=actor_label(actor),
            reason=reason,
            correlation_id=current_correlation_id(),
            at=at,
        )
    )


def insert_audit_entry(entry: AuditEntry) -> None:
    """One plain INSERT for the audit row: every won transition writes one, so it is the hottest
    write in the project. Model.save() would add a RETURNING of the new id (nobody reads it), its
    save machinery and a compiled query per call (together about a quarter of a transition's
    Python time, see bench/transitions.py). The column list is Django's own for AuditEntry, built
    once; each value goes through its field's pre_save and get_db_prep_save, as save() does."""
    using = router.db_for_write(AuditEntry, instance=entry)
    connection = connections[using]
    fields = _insert_fields()
    params = [f.get_db_prep_save(f.pre_save(entry, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(using), params)


@cache
def _insert_fields() -> list[models.Field]:
    return [f for f in AuditEntry._meta.concrete_fields if not f.primary_key]


@cache
def _insert_sql(using: str) -> str:
    quote = connections[using].ops.quote_name
    columns = []
    for f in _insert_fields():
        assert f.column is not None  # a concrete field always has its column
        columns.append(quote(f.column))
    placeholders = ", ".join(["%s"] * len(_insert_fields()))
    return f"INSERT INTO {quote(AuditEntry._meta.db_table)} ({', '.join(columns)}) VALUES ({placeholders})"


@task_prerun.connect(dispatch_uid="audit.task_context")
def bind_task_context(task_id: str | None = None, **_: Any) -> None:
    correlation_id.set(f"task-{task_id}" if task_id else "")
    structlog.contextvars.bind_contextvars(task_id=task_id)


@task_postrun.connect(dispatch_uid="audit.task_teardown")
def task_teardown(**_: Any) -> None:
    flush_pending_beacons()
    structlog.contextvars.unbind_contextvars("task_id")
    correlation_id.set("")


@receiver(request_finished, dispatch_uid="audit.request_teardown")
def request_teardown(**_: Any) -> None:
    flush_pending_beacons()


@receiver(enqueue_failed, dispatch_uid="audit.enqueue_failed_beacon")
def beacon_on_enqueue_failure(task_name: str, args: tuple[object, ...], **_: Any) -> None:
    """The broker refused a task: a beacon, so the loss is counted and alerted on (core.enqueue)."""
    emit_beacon("enqueue_failed", task_name=task_name, task_args=list(args))
