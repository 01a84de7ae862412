"""The system check that every django-fsm state field is protected and moves only through the audited
transition helper: each rule on a model built for the test, the installed models, manage.py check."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.core.checks import Tags, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import models
from django.test.utils import isolate_apps
from django_fsm import (
    ConcurrentTransitionMixin,
    FSMField,
    FSMFieldMixin,
    FSMIntegerField,
    FSMKeyField,
    FSMModelMixin,
    transition,
)

from audit.checks import AUDIT_RECEIVER_UID, check_fsm_fields, fsm_state_fields
from audit.receivers import write_audit_entry
from audit.signals import transition_committed
from bench.primitives.models import ConcurrentTicket, Ticket, TicketStatus

LABEL = "primitives"


def state_model(
    name: str,
    *,
    protected: bool = True,
    bases: tuple[type, ...] = (FSMModelMixin, models.Model),
    field: FSMFieldMixin | None = None,
    with_transition: bool = True,
    extra: dict[str, Any] | None = None,
) -> type[models.Model]:
    """A model in the `primitives` app of whichever registry is current; by default one the check
    accepts (protected, FSMModelMixin, choices, one transition), so each test changes one thing."""
    status = field or FSMField(choices=TicketStatus.choices, default=TicketStatus.OPEN, protected=protected)
    attrs: dict[str, Any] = {"__module__": __name__, "status": status, "Meta": type("Meta", (), {"app_label": LABEL})}
    if with_transition:

        def close(self: models.Model) -> None:
            pass

        attrs["close"] = transition(field=status, source=TicketStatus.OPEN, target=TicketStatus.CLOSED)(close)
    return type(name, bases, {**attrs, **(extra or {})})


def errors_for(registry: Any) -> list[tuple[str, str]]:
    return [(e.id, e.msg) for e in check_fsm_fields(app_configs=[registry.get_app_config(LABEL)])]


def ids_for(registry: Any) -> list[str]:
    return sorted(error_id for error_id, _ in errors_for(registry))


@pytest.fixture
def audit_receiver() -> Iterator[None]:
    """Lets a test disconnect or re-scope the audit receiver, and always puts it back as
    AuditConfig.ready() connected it (for every sender)."""
    yield
    transition_committed.disconnect(dispatch_uid=AUDIT_RECEIVER_UID, sender=Ticket)
    transition_committed.disconnect(dispatch_uid=AUDIT_RECEIVER_UID)
    transition_committed.connect(write_audit_entry, dispatch_uid=AUDIT_RECEIVER_UID)


def test_a_protected_audited_model_with_transitions_passes():
    with isolate_apps("bench.primitives") as registry:
        state_model("GuardedTicket")
        state_model("ConcurrentGuardedTicket", bases=(ConcurrentTransitionMixin, models.Model))

        assert [m.__name__ for m, _ in fsm_state_fields([registry.get_app_config(LABEL)])] == [
            "GuardedTicket",
            "ConcurrentGuardedTicket",
        ]
        assert errors_for(registry) == []


@pytest.mark.parametrize(
    "field",
    [
        lambda: FSMField(choices=TicketStatus.choices, default=TicketStatus.OPEN),
        lambda: FSMIntegerField(choices=[(1, "open"), (2, "closed")], default=1, protected=False),
    ],
    ids=["FSMField", "FSMIntegerField"],
)
def test_an_unprotected_state_field_is_an_error(field):
    with isolate_apps("bench.primitives") as registry:
        state_model("LooseTicket", field=field())

        [(error_id, message)] = errors_for(registry)

    assert error_id == "audit.E001"
    assert "primitives.LooseTicket.status" in message and "protected=True" in message


def test_an_unprotected_fsm_key_field_is_an_error():
    with isolate_apps("bench.primitives") as registry:
        meta = type("Meta", (), {"app_label": LABEL})
        name = models.CharField(max_length=20, primary_key=True)
        state = type("TicketState", (models.Model,), {"__module__": __name__, "name": name, "Meta": meta})
        state_model("KeyedTicket", field=FSMKeyField(state, default="open", on_delete=models.PROTECT))

        # No choices either: the helper could not check the state the actor saw (E006).
        assert ids_for(registry) == ["audit.E001", "audit.E006"]


def test_an_unprotected_field_is_reported_once_not_again_on_its_proxy():
    with isolate_apps("bench.primitives") as registry:
        loose = state_model("LooseTicket", protected=False)
        meta = type("Meta", (), {"app_label": LABEL, "proxy": True})
        type("LooseTicketProxy", (loose,), {"__module__": __name__, "Meta": meta})

        assert ids_for(registry) == ["audit.E001"]


def test_the_error_says_how_to_fix_it():
    with isolate_apps("bench.primitives") as registry:
        state_model("LooseTicket", protected=False)

        [error] = check_fsm_fields(app_configs=[registry.get_app_config(LABEL)])

    assert error.is_serious() and "protected=True" in error.hint and "apply_transition" in error.hint


def test_a_state_field_without_transitions_is_an_error():
    with isolate_apps("bench.primitives") as registry:
        state_model("FrozenTicket", with_transition=False)

        [(error_id, message)] = errors_for(registry)

    assert error_id == "audit.E003" and "primitives.FrozenTicket.status" in message


def test_a_protected_field_on_a_model_without_fsm_model_mixin_is_an_error():
    with isolate_apps("bench.primitives") as registry:
        state_model("PlainTicket", bases=(models.Model,))

        [(error_id, message)] = errors_for(registry)

    assert error_id == "audit.E004" and "primitives.PlainTicket" in message and "FSMModelMixin" in message


def test_two_state_fields_on_one_model_is_an_error():
    with isolate_apps("bench.primitives") as registry:
        phase = FSMField(choices=TicketStatus.choices, default=TicketStatus.OPEN, protected=True)

        def finish(self: models.Model) -> None:
            pass

        extra = {"phase": phase, "finish": transition(field=phase, source="open", target="closed")(finish)}
        state_model("TwoMachineTicket", extra=extra)

        [(error_id, message)] = errors_for(registry)

    assert error_id == "audit.E005" and "primitives.TwoMachineTicket" in message


def test_a_state_field_without_choices_is_an_error():
    with isolate_apps("bench.primitives") as registry:
        state_model("FreeTextTicket", field=FSMField(default="open", protected=True))

        [(error_id, message)] = errors_for(registry)

    assert error_id == "audit.E006" and "primitives.FreeTextTicket.status" in message


def test_every_state_model_is_an_error_when_the_audit_receiver_is_disconnected(audit_receiver):
    with isolate_apps("bench.primitives") as registry:
        state_model("GuardedTicket")
        assert errors_for(registry) == []

        transition_committed.disconnect(dispatch_uid=AUDIT_RECEIVER_UID)

        [(error_id, message)] = errors_for(registry)
        assert error_id == "audit.E002" and "primitives.GuardedTicket.status" in message
        assert AUDIT_RECEIVER_UID in message


def test_a_receiver_connected_for_another_sender_does_not_cover_a_model(audit_receiver):
    # given: the audit receiver connected for Ticket only
    transition_committed.disconnect(dispatch_uid=AUDIT_RECEIVER_UID)
    transition_committed.connect(write_audit_entry, sender=Ticket, dispatch_uid=AUDIT_RECEIVER_UID)

    errors = check_fsm_fields(app_configs=[apps.get_app_config(LABEL)])

    assert [(e.id, e.obj) for e in errors] == [("audit.E002", ConcurrentTicket)]


def test_the_installed_money_models_pass():
    labels = {model._meta.label for model, _ in fsm_state_fields()}

    assert {"payouts.Payout", "affiliates.Commission", "pos_sync.SyncJob", "loyalty.LoyaltyDiscount"} <= labels
    assert {"primitives.Ticket", "primitives.ConcurrentTicket"} <= labels
    assert check_fsm_fields() == []
    assert [e for e in run_checks(tags=[Tags.models]) if e.id.startswith("audit.")] == []


@pytest.fixture
def unprotected_model_installed() -> Iterator[type[models.Model]]:
    """A bad model in the real app registry (isolate_apps' registry is invisible to manage.py
    check), removed again afterwards."""
    model = state_model("UnguardedTicket", protected=False)
    try:
        yield model
    finally:
        del apps.all_models[LABEL][model._meta.model_name]
        apps.clear_cache()


def test_manage_py_check_fails_on_an_unprotected_state_field(unprotected_model_installed):
    with pytest.raises(SystemCheckError) as failed:
        call_command("check")

    assert "audit.E001" in str(failed.value) and "primitives.UnguardedTicket.status" in str(failed.value)
