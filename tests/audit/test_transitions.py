"""The guarded-transition helper on one connection: legality, bad input, audit row, in-memory state."""

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction

from audit.models import AuditEntry, BeaconCount
from audit.transitions import allowed_targets, apply_transition, apply_transition_to, available_transitions
from bench.primitives.models import Ticket, TicketStatus
from core.actors import SystemActor
from core.errors import Conflict, IllegalTransition, PermissionDenied, ValidationError

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("test")


def test_won_transition_writes_one_audit_row_and_updates_memory(superuser):
    ticket = Ticket.objects.create()

    apply_transition(
        instance=ticket, transition="approve", actor=superuser, reason="looks right", changes={"decided_by": "kerem"}
    )

    assert ticket.status == TicketStatus.APPROVED and ticket.decided_by == "kerem"
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.APPROVED and ticket.decided_by == "kerem"
    entry = AuditEntry.objects.get()
    assert (entry.object_id, entry.source, entry.target, entry.transition) == (
        str(ticket.pk),
        "open",
        "approved",
        "approve",
    )
    assert (entry.actor, entry.actor_label, entry.reason) == (superuser, "kerem", "looks right")


def test_status_field_cannot_be_assigned_directly():
    ticket = Ticket.objects.create()
    with pytest.raises(AttributeError):
        ticket.status = TicketStatus.CLOSED


def test_stale_instance_gets_conflict_with_current_state_and_actor(superuser):
    ticket = Ticket.objects.create()
    stale = Ticket.objects.get(pk=ticket.pk)
    apply_transition(instance=ticket, transition="reject", actor=superuser)

    with pytest.raises(Conflict) as caught:
        apply_transition(instance=stale, transition="approve", actor=SYSTEM)

    assert caught.value.details["current_status"] == "rejected"
    assert caught.value.details["current_actor"] == "kerem"
    assert caught.value.details["changed_at"] is not None
    assert Ticket.objects.get().status == "rejected"
    assert AuditEntry.objects.count() == 1
    assert BeaconCount.objects.get(kind="ticket_race_lost").count == 1


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"transition": "approve", "actor": None}, "missing_actor"),
        ({"transition": "approve", "actor": "kerem"}, "missing_actor"),
        ({"transition": "teleport", "actor": SYSTEM}, "unknown_transition"),
        ({"transition": "approve", "actor": SYSTEM, "expected": "limbo"}, "unknown_state"),
    ],
)
def test_bad_input_raises_clear_error_and_writes_nothing(kwargs, code):
    ticket = Ticket.objects.create()
    with pytest.raises(ValidationError) as caught:
        apply_transition(instance=ticket, **kwargs)
    assert caught.value.code == code and caught.value.message
    assert Ticket.objects.get().status == "open"
    assert not AuditEntry.objects.exists()


def test_forbidden_transition_is_illegal_with_allowed_targets_and_writes_nothing():
    ticket = Ticket.objects.create()
    with pytest.raises(IllegalTransition) as caught:
        apply_transition(instance=ticket, transition="close", actor=SYSTEM)
    body = caught.value.as_dict()
    assert body["error"] == "illegal_transition"
    assert (body["from"], body["to"], body["allowed"]) == ("open", "closed", ["approved", "rejected"])
    assert Ticket.objects.get().status == "open" and not AuditEntry.objects.exists()
    assert BeaconCount.objects.get(kind="ticket_transition_refused").count == 1


def test_failed_condition_names_its_code():
    ticket = Ticket.objects.create(signed_off=False)
    with pytest.raises(IllegalTransition) as caught:
        apply_transition(instance=ticket, transition="approve", actor=SYSTEM)
    assert caught.value.code == "not_signed_off"
    assert Ticket.objects.get().status == "open"


def test_permission_declared_on_transition_is_enforced(django_user_model):
    staff = django_user_model.objects.create_user("ana", is_staff=True)
    ticket = Ticket.objects.create()
    apply_transition(instance=ticket, transition="approve", actor=SYSTEM)
    with pytest.raises(PermissionDenied):
        apply_transition(instance=ticket, transition="close", actor=staff)
    assert Ticket.objects.get().status == "approved"

    staff.user_permissions.add(Permission.objects.get(codename="close_ticket"))
    staff = django_user_model.objects.get(pk=staff.pk)
    apply_transition(instance=ticket, transition="close", actor=staff)
    assert Ticket.objects.get().status == "closed"


def test_transition_to_target_resolves_declaration_and_refuses_unknown_pairs():
    ticket = Ticket.objects.create()
    apply_transition_to(instance=ticket, target="rejected", expected="open", actor=SYSTEM)
    assert Ticket.objects.get().status == "rejected"

    with pytest.raises(IllegalTransition) as caught:
        apply_transition_to(instance=ticket, target="approved", expected="rejected", actor=SYSTEM)
    assert caught.value.details["allowed"] == ["closed"]
    with pytest.raises(ValidationError):
        apply_transition_to(instance=ticket, target="nonsense", expected="rejected", actor=SYSTEM)


def test_expected_state_that_moved_on_is_a_conflict_not_illegal():
    ticket = Ticket.objects.create()
    apply_transition(instance=ticket, transition="approve", actor=SYSTEM)
    with pytest.raises(Conflict):
        apply_transition_to(instance=ticket, target="rejected", expected="open", actor=SYSTEM)


def test_on_commit_runs_only_after_commit_of_a_win(django_capture_on_commit_callbacks):
    ran = []
    ticket = Ticket.objects.create()
    stale = Ticket.objects.get(pk=ticket.pk)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        apply_transition(instance=ticket, transition="approve", actor=SYSTEM, on_commit=lambda: ran.append("won"))
        with pytest.raises(Conflict):
            apply_transition(instance=stale, transition="reject", actor=SYSTEM, on_commit=lambda: ran.append("lost"))
    assert ran == ["won"] and len(callbacks) == 1


def test_lost_race_inside_a_caller_transaction_leaves_it_usable():
    ticket = Ticket.objects.create()
    stale = Ticket.objects.get(pk=ticket.pk)
    apply_transition(instance=ticket, transition="approve", actor=SYSTEM)
    with transaction.atomic():
        with pytest.raises(Conflict):
            apply_transition(instance=stale, transition="reject", actor=SYSTEM)
        Ticket.objects.create(title="still usable")
    assert Ticket.objects.filter(title="still usable").exists()


def test_available_transitions_follow_state_conditions_and_permissions(superuser, django_user_model):
    ticket = Ticket.objects.create(signed_off=False)
    assert [o.target for o in available_transitions(ticket)] == ["rejected"]
    assert allowed_targets(Ticket, "open") == ["approved", "rejected"]
    apply_transition(instance=ticket, transition="reject", actor=SYSTEM)
    assert [o.target for o in available_transitions(ticket, superuser)] == ["closed"]
    nobody = django_user_model.objects.create_user("nobody")
    assert available_transitions(ticket, nobody) == []
