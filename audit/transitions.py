"""The one guarded-transition helper every domain uses.

Legality comes only from the model's django-fsm `@transition` declarations. Applying a transition
is ONE conditional write, `filter(pk=..., <field>=<state the actor saw>).update(<field>=<target>)`:
under READ COMMITTED a concurrent writer of the same row makes it wait, then re-check the WHERE
against the committed row and match nothing. Rowcount 0 therefore means "someone else moved it
first", reported as Conflict with the current state and who made it; never a silent overwrite.
A won transition sends `transition_committed` inside the same transaction (the audit row), and
only a won transition schedules its side effect on commit.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import connections, models, router, transaction
from django.db.models import CharField, OuterRef, Subquery
from django.db.models.functions import Cast
from django.db.models.sql import UpdateQuery
from django.utils import timezone
from django_fsm import ANY_OTHER_STATE, ANY_STATE, FSMFieldMixin, FSMMeta, Transition

from audit.beacons import emit_beacon
from audit.errors import AuditErrorCode
from audit.models import AuditEntry
from audit.signals import transition_committed
from core.actors import Actor, SystemActor, actor_label
from core.errors import Conflict, ErrorCode, IllegalTransition, PermissionDenied, ValidationError

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class TransitionOption:
    name: str
    source: str
    target: str


def condition(error_code: str, message: str = "") -> Callable[[Callable[..., bool]], Callable[..., bool]]:
    """Names a django-fsm condition's refusal, so the API can answer e.g. 422 kyc_not_verified."""

    def mark(func: Callable[..., bool]) -> Callable[..., bool]:
        # The refusal's code and message ride on the condition function itself; _refuse reads them back.
        func.error_code = error_code  # type: ignore[attr-defined]  # a function attribute set on purpose
        func.error_message = message  # type: ignore[attr-defined]  # a function attribute set on purpose
        return func

    return mark


def apply_transition(
    *,
    instance: M,
    transition: str,
    actor: Actor,
    expected: str | None = None,
    reason: str = "",
    changes: Mapping[str, Any] | None = None,
    on_commit: Callable[[], object] | None = None,
    check_permission: bool = True,
) -> M:
    """Move `instance` along its declared `transition`, from the state the actor saw.

    expected: the state the actor acted on. Defaults to the transition's only source state (a
    button named "approve" was pressed on a requested payout), else the instance's loaded state.
    changes: other columns written in the same UPDATE (reviewed_by, provider ids ...).
    on_commit: the side effect, scheduled only if this call wins and only after commit.
    Raises ValidationError (bad input), IllegalTransition (forbidden from `expected`, or a
    condition failed), PermissionDenied, Conflict (the row had moved on, or is gone; a RaceLost whose
    details are read on first use).
    """
    _require_actor(actor)
    meta, field = _transition_meta(type(instance), transition)
    seen = _seen_state(instance, meta, field, expected)
    target = _check_legal(instance, meta, field, transition, seen, actor, check_permission)

    values = {field.attname: target, **(changes or {})}
    # savepoint=False: nothing raises inside, so a lost race leaves the caller's transaction usable.
    with transaction.atomic(savepoint=False):
        won = _guarded_update(instance, field, seen, values)
        if won:
            _apply_in_memory(instance, field, values)
            transition_committed.send(
                sender=type(instance),
                instance=instance,
                field=field.name,
                transition=transition,
                source=seen,
                target=target,
                actor=actor,
                reason=reason,
                at=timezone.now(),
            )
            if on_commit is not None:
                transaction.on_commit(on_commit)
    if not won:
        raise _conflict(instance, field, transition, seen, target, actor)
    return instance


def check_transition(*, instance: models.Model, transition: str, actor: Actor, expected: str | None = None) -> str:
    """apply_transition()'s checks without the write: the target state if `transition` is legal
    from `expected` (conditions met, permitted to a user actor), else the same IllegalTransition /
    PermissionDenied (and beacon). For a step that leads up to a transition without being one
    (e.g. the first of two approvals), so it is refused exactly as the transition would be."""
    _require_actor(actor)
    meta, field = _transition_meta(type(instance), transition)
    seen = _seen_state(instance, meta, field, expected)
    return _check_legal(instance, meta, field, transition, seen, actor, True)


def _guarded_update(instance: models.Model, field: FSMFieldMixin, seen: str, values: Mapping[str, Any]) -> bool:
    """`filter(pk=<pk>, <field>=<seen>).update(**values) == 1`, with Django's compiled SQL kept per
    shape (model, database, columns, which of them are NULL): compiling the same UPDATE again on
    every transition was about a quarter of the helper's Python time (bench/transitions.py). A
    shape is cached only once Django has compiled it and produced exactly the parameters computed
    here; what the cache does not handle (F() expressions, fields with their own placeholder,
    multi-table inheritance) always goes through the ORM.
    """
    model = type(instance)
    using = router.db_for_write(model, instance=instance)
    connection = connections[using]
    prepared = _update_params(model, values, instance.pk, field.attname, seen, connection)
    sql = _UPDATE_SQL.get((model, using, prepared[0])) if prepared else None
    if sql is not None and prepared is not None:  # the common case: no queryset built at all
        with connection.cursor() as cursor:
            cursor.execute(sql, prepared[1])
            return cursor.rowcount == 1
    queryset = model._base_manager.db_manager(using).filter(pk=instance.pk, **{field.attname: seen})
    if prepared is not None:
        # chain(klass) returns a klass instance; django-stubs types it as the base Query.
        query = cast(UpdateQuery, queryset.query.chain(UpdateQuery))
        query.add_update_values(dict(values))
        compiled, django_params = query.get_compiler(using).as_sql()
        if not query.get_related_updates() and tuple(django_params) == tuple(prepared[1]):
            _UPDATE_SQL[(model, using, prepared[0])] = compiled
    return queryset.update(**values) == 1


_UPDATE_SQL: dict[tuple, str] = {}


def _update_params(
    model: type[models.Model], values: Mapping[str, Any], pk: Any, attname: str, seen: str, connection: Any
) -> tuple[tuple[tuple[str, bool], ...], list[Any]] | None:
    """((column name, is NULL) per value, the parameters as Django's compiler computes them), or
    None for a shape the cache does not handle."""
    if pk is None or model._meta.parents:
        return None
    nulls, params = [], []
    for name, value in values.items():
        field = model._meta.get_field(name)
        if not isinstance(field, models.Field):  # a reverse relation, no column: the ORM refuses it
            return None
        if hasattr(value, "resolve_expression") or hasattr(field, "get_placeholder"):
            return None
        if hasattr(value, "prepare_database_save"):
            if not field.remote_field:
                return None
            value = value.prepare_database_save(field)
        value = field.get_db_prep_save(value, connection=connection)
        if hasattr(value, "as_sql"):
            return None
        nulls.append((name, value is None))
        if value is not None:  # Django writes `col = NULL` into the SQL itself
            params.append(value)
    state_field = model._meta.get_field(attname)
    if not isinstance(state_field, models.Field):
        return None
    for where_field, value in ((model._meta.pk, pk), (state_field, seen)):
        params.append(where_field.get_db_prep_value(where_field.get_prep_value(value), connection, prepared=True))
    return tuple(nulls), params


def apply_transition_to(*, instance: M, target: str, expected: str, actor: Actor, **kwargs: Any) -> M:
    """apply_transition() for callers that name the target state (PUT {"status": ...})."""
    field = fsm_field(type(instance))
    _require_state(field, expected, "expected_status")
    _require_state(field, target, "status")
    name = transition_name(type(instance), source=expected, target=target)
    if name is None:
        _refuse(instance, field, "", expected, target, actor)
    return apply_transition(instance=instance, transition=name, actor=actor, expected=expected, **kwargs)


def transition_name(model: type[models.Model], *, source: str, target: str) -> str | None:
    for option in declared_transitions(model):
        if option.target == target and _source_matches(option, source):
            return option.name
    return None


def allowed_targets(model: type[models.Model], state: str) -> list[str]:
    """Targets the declarations allow from `state`, ignoring conditions and permissions."""
    return sorted({o.target for o in declared_transitions(model) if _source_matches(o, state)})


def available_transitions(instance: models.Model, user: "User | AnonymousUser | None" = None) -> list[TransitionOption]:
    """What can be done now: declared from the current state, conditions met, permitted to `user`."""
    field = fsm_field(type(instance))
    state = field.get_state(instance)
    options = []
    for name, method in field.transitions[type(instance)].items():
        meta: FSMMeta = method._django_fsm
        declared = meta.get_transition(state)
        if declared is None or not meta.has_transition(state) or not meta.conditions_met(instance, state):
            continue
        if user is not None and not declared.has_perm(instance, user):
            continue
        options.append(TransitionOption(name=name, source=state, target=_state(declared.target)))
    return options


def declared_transitions(model: type[models.Model]) -> list[TransitionOption]:
    field = fsm_field(model)
    return [
        TransitionOption(name=t.name, source=_state(t.source), target=_state(t.target))
        for t in field.get_all_transitions(model)
    ]


def fsm_field(model: type[models.Model]) -> FSMFieldMixin:
    fields = [f for f in model._meta.concrete_fields if isinstance(f, FSMFieldMixin)]
    if len(fields) != 1:
        raise ValidationError(
            f"{model.__name__} must have exactly one FSM field.", code=AuditErrorCode.UNKNOWN_TRANSITION
        )
    return fields[0]


def _require_actor(actor: Actor | None) -> None:
    if not isinstance(actor, AbstractBaseUser | SystemActor):
        raise ValidationError(
            "Every transition needs an actor: a user, or a SystemActor naming the job.",
            code=AuditErrorCode.MISSING_ACTOR,
        )


def _transition_meta(model: type[models.Model], name: str) -> tuple[FSMMeta, FSMFieldMixin]:
    meta = getattr(getattr(model, name, None), "_django_fsm", None)
    if not isinstance(meta, FSMMeta):
        known = sorted({o.name for o in declared_transitions(model)})
        raise ValidationError(
            f"{model.__name__} has no transition '{name}'.", code=AuditErrorCode.UNKNOWN_TRANSITION, known=known
        )
    # django-fsm swaps a field given by name for the field itself when the model class is prepared.
    assert isinstance(meta.field, FSMFieldMixin)
    return meta, meta.field


def _state(value: object) -> str:
    """A declared source or target state as the str it is. django-fsm types states as
    str | int | Choices; every state field here is an FSMField (a CharField) over TextChoices, and no
    transition declares a RETURN_VALUE or GET_STATE target."""
    assert isinstance(value, str)
    return value


def _require_state(field: FSMFieldMixin, state: str | None, what: str) -> None:
    valid = [value for value, _label in field.choices or ()]  # audit.checks (E006) requires choices
    if state not in valid:
        raise ValidationError(f"Unknown {what} '{state}'.", code=AuditErrorCode.UNKNOWN_STATE, valid=valid)


def _seen_state(instance: models.Model, meta: FSMMeta, field: FSMFieldMixin, expected: str | None) -> str:
    if expected is None:
        sources = [_state(s) for s in meta.transitions if s not in (ANY_STATE, ANY_OTHER_STATE)]
        expected = sources[0] if len(sources) == 1 else field.get_state(instance)
    _require_state(field, expected, "expected state")
    return expected


def _check_legal(
    instance: models.Model,
    meta: FSMMeta,
    field: FSMFieldMixin,
    name: str,
    seen: str,
    actor: Actor,
    check_permission: bool,
) -> str:
    declared: Transition | None = meta.get_transition(seen) if meta.has_transition(seen) else None
    if declared is None:
        target = next(iter({_state(t.target) for t in meta.transitions.values()}), "")
        _refuse(instance, field, name, seen, target, actor)
    for condition in declared.conditions:
        if not condition(instance):
            _refuse(instance, field, name, seen, _state(declared.target), actor, condition=condition)
    if check_permission and isinstance(actor, AbstractBaseUser) and not declared.has_perm(instance, actor):
        emit_beacon(
            f"{instance._meta.model_name}_transition_forbidden",
            object_id=instance.pk,
            transition=name,
            actor=actor_label(actor),
        )
        raise PermissionDenied(f"{actor_label(actor)} may not {name} this {instance._meta.verbose_name}.")
    return _state(declared.target)


def _refuse(
    instance: models.Model,
    field: FSMFieldMixin,
    name: str,
    seen: str,
    target: str,
    actor: Actor,
    condition: Callable[..., bool] | None = None,
) -> NoReturn:
    code: str = ErrorCode.ILLEGAL_TRANSITION
    if condition is not None:
        code = getattr(condition, "error_code", AuditErrorCode.CONDITION_NOT_MET)
    message = getattr(condition, "error_message", "") or f"Cannot move from '{seen}' to '{target}'."
    emit_beacon(
        f"{instance._meta.model_name}_transition_refused",
        object_id=instance.pk,
        transition=name,
        source=seen,
        target=target,
        code=code,
        actor=actor_label(actor),
    )
    raise IllegalTransition(
        message, code=code, **{"from": seen, "to": target, "allowed": allowed_targets(type(instance), seen)}
    )


def _conflict(
    instance: models.Model, field: FSMFieldMixin, name: str, seen: str, target: str, actor: Actor
) -> Conflict:
    emit_beacon(
        f"{instance._meta.model_name}_race_lost",
        object_id=instance.pk,
        transition=name,
        expected=seen,
        target=target,
        actor=actor_label(actor),
    )
    return RaceLost(instance=instance, field=field, seen=seen)


class RaceLost(Conflict):
    """The Conflict of a lost race, whose details (the state now, who put it there, when) are read
    on first use: by the API's 409 body, the admin's message, a log line.

    Why lazily: many callers treat a lost race as "someone else did it" (a drain job finished by
    another worker, a webhook already applied) and never look. For them the race costs the guarded
    UPDATE alone, and the loser's transaction holds no further statement. A caller that renders the
    conflict pays one SELECT at that moment, which then reports the row as it is now.
    """

    def __init__(self, *, instance: models.Model, field: FSMFieldMixin, seen: str) -> None:
        Exception.__init__(self)
        self.code = str(self.default_code)
        self._instance, self._field, self._seen = instance, field, seen
        self._loaded: tuple[str, dict[str, Any]] | None = None

    @property
    def message(self) -> str:  # type: ignore[override]  # a lazy read-only property for the base's attribute
        return self._load()[0]

    @property
    def details(self) -> dict[str, Any]:  # type: ignore[override]  # a lazy read-only property for the base's attribute
        return self._load()[1]

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (e.g. a Celery result) as the plain Conflict it renders to.
        return (Conflict, (self.message,), {"code": self.code, "message": self.message, "details": self.details})

    def _load(self) -> tuple[str, dict[str, Any]]:
        if self._loaded is None:
            self._loaded = _conflict_details(self._instance, self._field, self._seen)
        return self._loaded


def _conflict_details(instance: models.Model, field: FSMFieldMixin, seen: str) -> tuple[str, dict[str, Any]]:
    model = type(instance)
    latest = AuditEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(model),
        object_id=Cast(OuterRef("pk"), output_field=CharField()),
    ).order_by("-id")
    # One statement: the state now, and the audit row of whoever put it there.
    current = (
        model._base_manager.filter(pk=instance.pk)
        .annotate(_by=Subquery(latest.values("actor_label")[:1]), _at=Subquery(latest.values("at")[:1]))
        .values(field.attname, "_by", "_at")
        .first()
    )
    label = f"{str(model._meta.verbose_name).capitalize()} #{instance.pk}"
    if current is None:
        details = {"current_status": None, "current_actor": None, "changed_at": None, "expected_status": seen}
        return f"{label} no longer exists.", details
    state, by, at = current[field.attname], current["_by"], current["_at"]
    message = f"{label} is already {state}" + (f" (by {by})." if by else ".")
    details = {
        "current_status": state,
        "current_actor": by,
        "changed_at": at.isoformat() if at else None,
        "expected_status": seen,
    }
    return message, details


def _apply_in_memory(instance: models.Model, field: FSMFieldMixin, values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        if name == field.attname:
            field.set_state(instance, value)  # the protected descriptor refuses plain assignment
        elif not hasattr(value, "resolve_expression"):
            setattr(instance, name, value)
        else:
            instance.__dict__.pop(name, None)  # an F() expression: reload on next access


def _source_matches(option: TransitionOption, state: str) -> bool:
    if option.source == ANY_STATE:
        return True
    if option.source == ANY_OTHER_STATE:
        return option.target != state
    return option.source == state
