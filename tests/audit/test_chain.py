"""The audit trail's hash chain (audit.chain): a normal run verifies; a row edited, deleted or
inserted by raw SQL is reported by `manage.py verify_audit_trail` with a non-zero exit."""

import importlib
import threading
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.db.models import F
from django.utils import timezone

from audit.chain import chain_hash, content_digest, verify_audit_trail
from audit.models import AuditEntry, BeaconCount
from audit.signals import transition_committed
from audit.tasks import verify_audit_trail_task
from audit.transitions import apply_transition
from bench.primitives.models import Ticket
from core.actors import SystemActor

pytestmark = pytest.mark.django_db

ACTOR = SystemActor("chain-test")


def _decided(count: int) -> list[Ticket]:
    """`count` tickets, each moved open -> approved -> closed through the transition helper."""
    tickets = [Ticket.objects.create(title=f"t{i}") for i in range(count)]
    for ticket in tickets:
        apply_transition(instance=ticket, transition="approve", actor=ACTOR, reason="signed off: ünïcode ok")
        apply_transition(instance=ticket, transition="close", actor=ACTOR)
    return tickets


def _long_chain(ticket: Ticket, targets: list[str]) -> list[AuditEntry]:
    """Rows through the receiver itself (as affiliates' tier events send the signal), for a chain
    longer than Ticket's declarations allow; the last target is the ticket's state, so the chain's
    end matches the object."""
    source = ticket.status
    for target in targets:
        transition_committed.send(
            sender=Ticket,
            instance=ticket,
            field="status",
            transition=f"to_{target}",
            source=source,
            target=target,
            actor=ACTOR,
            reason="",
            at=timezone.now(),
        )
        source = target
    return list(AuditEntry.objects.filter(object_id=str(ticket.pk)).order_by("seq"))


def _verify() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("verify_audit_trail", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _broken() -> str:
    err = StringIO()
    with pytest.raises(CommandError, match="audit trail broken"):
        call_command("verify_audit_trail", stdout=StringIO(), stderr=err)
    return err.getvalue()


def _sql(statement: str, params: list[object]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_a_normal_run_of_transitions_verifies():
    # given: four tickets, two transitions each
    tickets = _decided(4)

    # then: every chain links from seq 1, and the command says so
    out, _ = _verify()
    assert out.strip() == "audit trail OK: 8 rows, 4 chains"
    for ticket in tickets:
        first, second = AuditEntry.objects.filter(object_id=str(ticket.pk)).order_by("seq")
        assert (first.seq, first.previous_hash, second.seq, second.previous_hash) == (1, "", 2, first.hash)
        assert len(first.hash) == 64 and first.hash != second.hash


def test_the_insert_computes_the_same_hash_as_python():
    ticket = _decided(1)[0]
    row = AuditEntry.objects.get(object_id=str(ticket.pk), seq=2)
    content_type = ContentType.objects.get_for_model(Ticket)
    digest = content_digest(
        object_type=f"{content_type.app_label}.{content_type.model}",
        at=row.at,
        object_id=row.object_id,
        field=row.field,
        transition=row.transition,
        source=row.source,
        target=row.target,
        actor_id=row.actor_id,
        actor_label=row.actor_label,
        reason=row.reason,
        correlation_id=row.correlation_id,
    )
    assert row.hash == chain_hash(previous_hash=row.previous_hash, seq=2, digest=digest)


def test_a_row_edited_by_raw_sql_is_named():
    _decided(3)
    edited = AuditEntry.objects.order_by("id")[2]

    _sql("UPDATE audit_auditentry SET reason = %s WHERE id = %s", ["nothing to see here", edited.pk])

    err = _broken()
    assert f"audit row id={edited.pk} " in err and "hash does not match its content" in err
    assert err.count("\n") == 2, err  # the summary line and this one problem: the rest verifies


def test_a_row_deleted_from_the_middle_of_a_chain_is_a_gap():
    ticket = Ticket.objects.create()
    _first, middle, last = _long_chain(ticket, ["approved", "rejected", "open"])

    _sql("DELETE FROM audit_auditentry WHERE id = %s", [middle.pk])

    err = _broken()
    assert f"audit row id={last.pk} " in err and "rows missing before it (seq 2..2)" in err
    assert "previous_hash does not link" in err  # its predecessor is not the row it was chained to


def test_deleting_the_newest_row_is_caught_by_the_objects_state():
    ticket = _decided(2)[0]
    newest = AuditEntry.objects.get(object_id=str(ticket.pk), seq=2)

    _sql("DELETE FROM audit_auditentry WHERE id = %s", [newest.pk])

    err = _broken()
    assert "the newest row leads to 'approved' but the object is 'closed'" in err


def test_a_row_inserted_by_raw_sql_is_reported_even_with_a_valid_looking_hash():
    # given: a chain of three, and a forger who renumbers the tail to make room at seq 2 and
    # computes the forged row's own hash correctly
    ticket = Ticket.objects.create()
    first, second, third = _long_chain(ticket, ["approved", "rejected", "open"])
    _sql("UPDATE audit_auditentry SET seq = seq + 100 WHERE id IN (%s, %s)", [second.pk, third.pk])
    _sql("UPDATE audit_auditentry SET seq = seq - 99 WHERE id IN (%s, %s)", [second.pk, third.pk])
    forged_at = timezone.now()
    content_type = ContentType.objects.get_for_model(Ticket)
    values = {
        "object_id": str(ticket.pk),
        "field": "status",
        "transition": "forged",
        "source": "approved",
        "target": "approved",
        "actor_id": None,
        "actor_label": "nobody",
        "reason": "",
        "correlation_id": "",
    }
    digest = content_digest(object_type=f"{content_type.app_label}.{content_type.model}", at=forged_at, **values)
    forged_hash = chain_hash(previous_hash=first.hash, seq=2, digest=digest)
    _sql(
        "INSERT INTO audit_auditentry (content_type_id, object_id, field, transition, source, target, actor_label,"
        " reason, correlation_id, at, seq, previous_hash, hash) VALUES (%s, %s, 'status', 'forged', 'approved',"
        " 'approved', 'nobody', '', '', %s, 2, %s, %s)",
        [content_type.pk, str(ticket.pk), forged_at, first.hash, forged_hash],
    )

    # then: the forged row itself checks out, the row after it does not
    err = _broken()
    assert f"audit row id={second.pk} " in err and "previous_hash does not link" in err
    assert "the row was edited" in err  # its seq moved, and seq is in its hash


def test_a_row_inserted_at_the_end_with_a_made_up_hash_is_reported():
    ticket = _decided(1)[0]
    last = AuditEntry.objects.get(object_id=str(ticket.pk), seq=2)
    _sql(
        "INSERT INTO audit_auditentry (content_type_id, object_id, field, transition, source, target, actor_label,"
        " reason, correlation_id, at, seq, previous_hash, hash) SELECT content_type_id, object_id, field,"
        " transition, source, target, actor_label, reason, correlation_id, at, 3, hash, %s"
        " FROM audit_auditentry WHERE id = %s",
        ["0" * 64, last.pk],
    )
    assert "hash does not match its content" in _broken()


def test_the_hourly_task_raises_the_critical_beacon_on_a_broken_trail():
    _decided(1)
    assert verify_audit_trail_task() == 0
    _sql("UPDATE audit_auditentry SET actor_label = 'someone else'", [])

    assert verify_audit_trail_task() == 2
    assert BeaconCount.objects.get(kind="audit_trail_broken").count == 1


def test_the_migration_chains_rows_written_before_the_chain():
    # given: rows as they were before 0004, no hash and no place in a chain (here out-of-order
    # seqs: the UNIQUE that 0005 adds exists in this test's schema already)
    _decided(2)
    AuditEntry.objects.update(seq=F("id") + 1000, previous_hash="", hash="")
    assert not verify_audit_trail().ok

    # when
    migration = importlib.import_module("audit.migrations.0004_audit_hash_chain")
    migration.chain_existing_rows(apps, None)

    # then
    assert verify_audit_trail().ok


@pytest.mark.django_db(transaction=True)
def test_transitions_on_two_objects_do_not_wait_on_each_other():
    """A holds its transaction open after writing its audit row; B, on another ticket, commits
    meanwhile. Per-object chains share no lock; a global one would leave B blocked behind A."""
    slow, fast = Ticket.objects.create(), Ticket.objects.create()
    a_written, b_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                apply_transition(instance=Ticket.objects.get(pk=slow.pk), transition="approve", actor=ACTOR)
                a_written.set()
                assert b_done.wait(timeout=120), "B did not finish while A held its transaction open"
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def finish() -> None:
        try:
            assert a_written.wait(timeout=120)
            with transaction.atomic():
                apply_transition(instance=Ticket.objects.get(pk=fast.pk), transition="approve", actor=ACTOR)
            b_done.set()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=hold), threading.Thread(target=finish)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert verify_audit_trail().summary() == "audit trail OK: 2 rows, 2 chains"
