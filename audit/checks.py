"""System check: every django-fsm state field can move only through the transition helper, and
every move it makes leaves an audit row.

Registered with the `models` tag (imported from AuditConfig.ready()), so plain `manage.py check`,
and with it CI, migrate and runserver, fail on a model that breaks one of these rules:

audit.E001  the FSM field is not `protected=True`: `obj.status = ...; obj.save()` would write it
            with no legality check, no guarded UPDATE and no audit row.
audit.E002  `transition_committed` has no live receiver with dispatch_uid "audit.write_audit_entry"
            for this model as sender: apply_transition() would commit its moves without audit rows.
audit.E003  no @transition is declared on the field: apply_transition() has nothing legal to apply,
            so the only way to change the state would be a write around the helper. An error, not a
            warning: a state nobody may move is a plain column, not an FSMField.
audit.E004  a protected FSM field on a model without FSMModelMixin: refresh_from_db() assigns the
            field and the protected descriptor raises AttributeError (django-fsm-2 4.2).
audit.E005  more than one FSM field on the model: the helper's fsm_field() (apply_transition_to,
            allowed_targets, available_transitions, the refusal path) needs exactly one.
audit.E006  the FSM field has no choices: the helper validates the state the actor saw against
            them, so every apply_transition() on it would fail.
"""

import weakref
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

from django.apps import AppConfig, apps
from django.core.checks import CheckMessage, Error, Tags, register
from django.db import models
from django.dispatch.dispatcher import NONE_ID, _make_id  # type: ignore[attr-defined]  # Signal's private key function, not in the stubs
from django_fsm import FSMFieldMixin, FSMModelMixin

from audit.signals import transition_committed

# Must equal the dispatch_uid of audit.receivers.write_audit_entry: the check on the installed
# models (tests/audit/test_checks.py) fails if the two drift apart.
AUDIT_RECEIVER_UID = "audit.write_audit_entry"
HELPER = "audit.transitions.apply_transition()"


@register(Tags.models)
def check_fsm_fields(app_configs: Iterable[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for model, fields in fsm_state_fields(app_configs):
        errors += _check_model(model, fields)
    return errors


def fsm_state_fields(
    app_configs: Iterable[AppConfig] | None = None,
) -> Iterator[tuple[type[models.Model], list[FSMFieldMixin]]]:
    """(model, its django-fsm fields) for every installed model (or those of `app_configs`) that has
    one; FSMField, FSMIntegerField, FSMKeyField and any other FSMFieldMixin subclass."""
    found = apps.get_models() if app_configs is None else chain.from_iterable(c.get_models() for c in app_configs)
    for model in found:
        fields = [f for f in model._meta.concrete_fields if isinstance(f, FSMFieldMixin)]
        if fields:
            yield model, fields


def _check_model(model: type[models.Model], fields: list[FSMFieldMixin]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    name = model._meta.label
    if len(fields) > 1:
        errors.append(
            Error(
                f"{name} has {len(fields)} django-fsm fields ({', '.join(f.name for f in fields)}); {HELPER} "
                "and its helpers support exactly one state field per model.",
                hint="Keep one FSM state field on the model and put the second state machine on its own model.",
                obj=model,
                id="audit.E005",
            )
        )
    for field in fields:
        errors += _check_field(model, field)
    return errors


def _check_field(model: type[models.Model], field: FSMFieldMixin) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    where = f"{model._meta.label}.{field.name}"
    # Field-level rules once, on the model that owns the field (not again on its proxies or children).
    if field.model is model:
        if not field.protected:
            errors.append(_unprotected(where, field))
        if not field.choices:
            errors.append(
                Error(
                    f"{where} is a django-fsm field without choices: {HELPER} checks the state the actor saw "
                    "against them, so every transition of it would fail.",
                    hint=f"Declare {where} with choices=<its TextChoices>.choices.",
                    obj=field,
                    id="audit.E006",
                )
            )
    if field.protected and not issubclass(model, FSMModelMixin):
        errors.append(
            Error(
                f"{where} is protected but {model._meta.label} does not inherit django_fsm.FSMModelMixin: "
                "refresh_from_db() would raise AttributeError on the protected field.",
                hint=f"Add FSMModelMixin (or ConcurrentTransitionMixin, which includes it) to the bases of "
                f"{model.__name__}.",
                obj=model,
                id="audit.E004",
            )
        )
    if not field.transitions.get(model):
        errors.append(
            Error(
                f"{where} has no @transition declared on it: {HELPER} cannot move it, so any change of its "
                "state would bypass the helper and the audit trail.",
                hint=f"Declare its state changes as @transition(field={field.name}, source=..., target=...) "
                f"methods on {model.__name__} and apply them with {HELPER}.",
                obj=model,
                id="audit.E003",
            )
        )
    if not _audit_receiver_covers(model):
        errors.append(
            Error(
                f"{where}: audit.signals.transition_committed has no live receiver with dispatch_uid "
                f"'{AUDIT_RECEIVER_UID}' for {model._meta.label}, so {HELPER} would commit its transitions "
                "without an audit row.",
                hint="Keep 'audit' in INSTALLED_APPS and `from audit import receivers` in AuditConfig.ready(); "
                "write_audit_entry must stay connected for every sender (no sender=, never disconnected).",
                obj=model,
                id="audit.E002",
            )
        )
    return errors


def _unprotected(where: str, field: FSMFieldMixin) -> Error:
    return Error(
        f"{where} is a django-fsm state field without protected=True: `obj.{field.name} = ...; obj.save()` "
        f"could change it without {HELPER}, its legality check and its audit row.",
        hint=f"Declare it {type(field).__name__}(..., protected=True), give the model FSMModelMixin, and move "
        f"the state only with {HELPER}.",
        obj=field,
        id="audit.E001",
    )


def _audit_receiver_covers(model: type[models.Model]) -> bool:
    """Whether transition_committed.send(sender=model) would reach the audit receiver.

    Read from the signal's own registry (the same sender matching as Signal._live_receivers) rather
    than by importing audit.receivers here: that import would connect the receiver and hide the very
    mistake this looks for, AuditConfig.ready() no longer importing it.
    """
    senders = {NONE_ID, _make_id(model)}
    for (receiver_key, sender_key), receiver, *_ in list(transition_committed.receivers):
        if receiver_key != AUDIT_RECEIVER_UID or sender_key not in senders:
            continue
        if (receiver() if isinstance(receiver, weakref.ReferenceType) else receiver) is not None:
            return True
    return False
