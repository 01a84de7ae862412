"""The audit receiver (the one signal receiver with work in it: it writes the audit row) and the
task/request teardown hooks that tag work with its id and flush queued beacon counters."""

from typing import Any

import structlog
from celery.signals import task_postrun, task_prerun
from django.contrib.contenttypes.models import ContentType
from django.core.signals import request_finished
from django.db import models
from django.dispatch import receiver

from audit.actors import Actor, actor_label, actor_user
from audit.beacons import flush_pending_beacons
from audit.context import correlation_id, current_correlation_id
from audit.models import AuditEntry
from audit.signals import transition_committed


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
    AuditEntry.objects.create(
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
