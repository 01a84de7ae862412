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
from audit.chain import CONTENT_FIELDS, chain_hash, content_digest
from audit.models import AuditEntry
from audit.signals import transition_committed
from core.actors import Actor, actor_label, actor_user
from core.context import acting_system, correlation_id, current_correlation_id
from core.signals import beacon_requested, enqueue_failed


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
    once; each value goes through its field's pre_save and get_db_prep_save, as save() does.

    The same statement links the row into its object's hash chain (audit.chain): it reads the
    object's newest row in a subquery, so the transition sends no extra statement. That read
    cannot race: the row is written after the transition's guarded UPDATE, which holds the
    object's row lock until commit, so a second won transition of the same object can only reach
    its INSERT once the first has committed, and under READ COMMITTED the INSERT's snapshot,
    taken after its UPDATE returned, sees the first one's audit row. Should a writer ever skip that
    lock, UNIQUE (content_type, object_id, seq) refuses the fork instead of recording it."""
    using = router.db_for_write(AuditEntry, instance=entry)
    connection = connections[using]
    fields = _insert_fields()
    params = [f.get_db_prep_save(f.pre_save(entry, True), connection) for f in fields]
    content_type = entry.content_type
    digest = content_digest(
        object_type=f"{content_type.app_label}.{content_type.model}",
        at=entry.at,
        **{name: getattr(entry, name) for name in CONTENT_FIELDS},
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_insert_sql(using), [*params, digest, entry.content_type_id, entry.object_id])
            return
        # The demo's SQLite has no sha256(): read the newest row, link in Python. Its writers are
        # serialised by the database lock, which the guarded UPDATE already took.
        cursor.execute(_newest_sql(using), [entry.content_type_id, entry.object_id])
        seq, previous = cursor.fetchone() or (0, "")
        link = chain_hash(previous_hash=previous, seq=seq + 1, digest=digest)
        cursor.execute(_plain_insert_sql(using), [*params, seq + 1, previous, link])


CHAIN_FIELDS = ("seq", "previous_hash", "hash")


@cache
def _insert_fields() -> list[models.Field]:
    return [f for f in AuditEntry._meta.concrete_fields if not f.primary_key and f.name not in CHAIN_FIELDS]


@cache
def _columns(using: str) -> str:
    quote = connections[using].ops.quote_name
    columns = []
    for f in _insert_fields():
        assert f.column is not None  # a concrete field always has its column
        columns.append(quote(f.column))
    columns += [quote(name) for name in CHAIN_FIELDS]  # plain fields: each column is named after its field
    return ", ".join(columns)


@cache
def _newest_sql(using: str) -> str:
    table = connections[using].ops.quote_name(AuditEntry._meta.db_table)
    return f"SELECT seq, hash FROM {table} WHERE content_type_id = %s AND object_id = %s ORDER BY seq DESC LIMIT 1"


@cache
def _insert_sql(using: str) -> str:
    """INSERT ... SELECT <values>, <the chain's next seq, previous hash, new hash> FROM <the
    object's newest row, if any>; the hash as audit.chain.chain_hash() computes it."""
    table = connections[using].ops.quote_name(AuditEntry._meta.db_table)
    placeholders = ", ".join(["%s"] * len(_insert_fields()))
    seq, previous = "COALESCE(last.seq, 0) + 1", "COALESCE(last.hash, '')"
    link = f"encode(sha256(convert_to({previous} || ':' || ({seq}) || ':' || %s, 'UTF8')), 'hex')"
    return (
        f"INSERT INTO {table} ({_columns(using)}) SELECT {placeholders}, {seq}, {previous}, {link} "
        f"FROM (SELECT 1) AS one LEFT JOIN ({_newest_sql(using)}) AS last ON TRUE"
    )


@cache
def _plain_insert_sql(using: str) -> str:
    table = connections[using].ops.quote_name(AuditEntry._meta.db_table)
    placeholders = ", ".join(["%s"] * (len(_insert_fields()) + len(CHAIN_FIELDS)))
    return f"INSERT INTO {table} ({_columns(using)}) VALUES ({placeholders})"


@task_prerun.connect(dispatch_uid="audit.task_context")
def bind_task_context(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    correlation_id.set(f"task-{task_id}" if task_id else "")
    acting_system.set(f"task:{getattr(task, 'name', '') or '?'}")
    structlog.contextvars.bind_contextvars(task_id=task_id)


@task_postrun.connect(dispatch_uid="audit.task_teardown")
def task_teardown(**_: Any) -> None:
    flush_pending_beacons()
    structlog.contextvars.unbind_contextvars("task_id")
    correlation_id.set("")
    acting_system.set("")


@receiver(request_finished, dispatch_uid="audit.request_teardown")
def request_teardown(**_: Any) -> None:
    flush_pending_beacons()


@receiver(enqueue_failed, dispatch_uid="audit.enqueue_failed_beacon")
def beacon_on_enqueue_failure(task_name: str, args: tuple[object, ...], **_: Any) -> None:
    """The broker refused a task: a beacon, so the loss is counted and alerted on (core.enqueue)."""
    emit_beacon("enqueue_failed", task_name=task_name, task_args=list(args))


@receiver(beacon_requested, dispatch_uid="audit.requested_beacon")
def beacon_on_request(kind: str, details: dict[str, object], **_: Any) -> None:
    """A beacon from a layer that may not import audit (core.signals.beacon_requested)."""
    emit_beacon(kind, **details)
