"""The field-change trail: every change to a money-relevant field, recorded by the database itself.

Which fields are money-relevant is declared by the app that owns them, once, in its AppConfig.ready:
`track(Affiliate, fields=["kyc_status", "wise_recipient_id"])`. For each tracked table a trigger
writes one audit.FieldChange row per field that a statement created, changed or deleted (old ->
new, who, the request or task id, the database clock), in that statement. So no code path can
forget it: an admin form, a service, `queryset.update()`, a shell and raw SQL are all recorded.
A hidden field (a POS access token) records that it changed, never its value.

Who acted comes from core.context (the request being served, read when the row is written, or the
Celery task), and reaches the trigger per dialect:
- PostgreSQL: a statement that writes a tracked field is preceded, in the same transaction, by one
  `SELECT set_config('audit.actor_id', ..., true), ...`; transaction-local, so it is safe behind
  PgBouncer's transaction pooling and never leaks into another client's transaction. Autocommit
  statements are wrapped in a transaction for it. Only statements that name a tracked table (and,
  for UPDATE, a tracked column) pay this round trip, and only inside a request or task: the hot
  transitions (a payout's status, a commission's approval) never do.
- SQLite (the demo): the trigger calls functions registered on each connection that read the
  context directly.
A write with no context (raw SQL in psql, a shell) is still recorded, with an empty actor.

Why triggers we write, and not django-pghistory: pghistory's triggers exist only on PostgreSQL, so
the demo (SQLite) would show an empty trail; and its context injection prepends SET statements to
every SQL string, which with psycopg 3 leaves the cursor on the first result (the SET), hiding the
rowcount of `filter(status=prior).update()` that every guarded transition reads.

The triggers are (re)installed after every `migrate` (post_migrate), from the declarations, so a
newly tracked field needs no hand-written migration; stale ones are dropped.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

from core.context import current_actor, current_correlation_id

TRAIL_TABLE = "audit_fieldchange"
_COLUMNS = (
    "model, object_id, field, operation, old_value, new_value, value_hidden, currency, "
    "actor_id, actor_label, correlation_id, at"
)


@dataclass(frozen=True)
class TrackedField:
    name: str  # the model field's name ("affiliate"), as the trail shows it
    column: str  # its column ("affiliate_id")
    hidden: bool
    # A money field's currency, so the trail can show "€308.64" on its own: "col:<column>" (read
    # from the same row) or "code:<ISO code>" (a fixed currency); "" for a field that is not money.
    currency: str = ""


@dataclass(frozen=True)
class TrackedModel:
    label: str  # "affiliates.affiliate"
    table: str
    pk_column: str
    fields: tuple[TrackedField, ...]


_tracked: dict[str, TrackedModel] = {}


def track(
    model: type[Model],
    *,
    fields: Sequence[str] = (),
    hidden: Sequence[str] = (),
    money: Mapping[str, str] | None = None,
) -> None:
    """Record every change of these fields of `model` (hidden: only that it changed). `money` maps
    an amount field to its currency: the name of the row's currency field, or an ISO code."""
    meta = model._meta
    money = money or {}

    def currency_of(name: str) -> str:
        source = money.get(name, "")
        if not source:
            return ""
        return f"code:{source}" if source.isupper() else f"col:{_column(model, source)}"

    tracked = tuple(
        TrackedField(name=name, column=_column(model, name), hidden=name in hidden, currency=currency_of(name))
        for name in [*fields, *hidden]
    )
    assert meta.pk is not None
    _tracked[meta.db_table] = TrackedModel(
        label=meta.label_lower, table=meta.db_table, pk_column=_column(model, meta.pk.name), fields=tracked
    )
    _update_markers.cache_clear()


def _column(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    column = getattr(field, "column", None)
    if not isinstance(column, str):
        raise TypeError(f"{model._meta.label}.{name} has no column to track")
    return column


def tracked_models() -> list[TrackedModel]:
    return list(_tracked.values())


# --- Installing the triggers ---------------------------------------------------------------------


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION audit_field_trail() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  old_row jsonb;
  new_row jsonb;
  i integer := 2;
  old_value text;
  new_value text;
  hidden boolean;
  currency text;
BEGIN
  -- Arguments: model label, pk column, then per field: name, column, 'hidden' | 'shown', and its
  -- currency ('col:<column>', 'code:<ISO code>' or '').
  IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD); END IF;
  IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW); END IF;
  WHILE i < TG_NARGS LOOP
    old_value := old_row ->> TG_ARGV[i + 1];
    new_value := new_row ->> TG_ARGV[i + 1];
    hidden := TG_ARGV[i + 2] = 'hidden';
    currency := CASE
      WHEN TG_ARGV[i + 3] LIKE 'col:%' THEN COALESCE(new_row, old_row) ->> substr(TG_ARGV[i + 3], 5)
      ELSE substr(TG_ARGV[i + 3], 6) END;
    IF (TG_OP = 'UPDATE' AND old_value IS DISTINCT FROM new_value)
       OR (TG_OP <> 'UPDATE' AND COALESCE(old_value, new_value, '') <> '') THEN
      INSERT INTO {TRAIL_TABLE} ({_COLUMNS}) VALUES (
        TG_ARGV[0], COALESCE(new_row, old_row) ->> TG_ARGV[1], TG_ARGV[i], lower(TG_OP),
        CASE WHEN hidden THEN NULL ELSE old_value END, CASE WHEN hidden THEN NULL ELSE new_value END, hidden,
        COALESCE(currency, ''),
        NULLIF(current_setting('audit.actor_id', true), '')::integer,
        COALESCE(current_setting('audit.actor_label', true), ''),
        COALESCE(current_setting('audit.correlation_id', true), ''),
        clock_timestamp());
    END IF;
    i := i + 4;
  END LOOP;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION audit_field_trail_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '{TRAIL_TABLE} is append-only: a recorded change is never edited or deleted';
END $$;
"""


def _postgresql_statements(tracked: TrackedModel) -> list[str]:
    table = f'"{tracked.table}"'
    args = [tracked.label, tracked.pk_column]
    for field in tracked.fields:
        args += [field.name, field.column, "hidden" if field.hidden else "shown", field.currency]
    call = f"audit_field_trail({', '.join(_literal(arg) for arg in args)})"
    columns = ", ".join(f'"{field.column}"' for field in tracked.fields)
    return [
        f"CREATE TRIGGER audit_field_trail_write AFTER INSERT OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {call}",
        # UPDATE OF: a statement that does not SET a tracked column (a status transition) never
        # runs the trigger at all.
        f"CREATE TRIGGER audit_field_trail_update AFTER UPDATE OF {columns} ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {call}",
    ]


def _install_postgresql(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_PG_FUNCTION)
        cursor.execute(
            "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE tgname LIKE 'audit\\_field\\_trail\\_%%'"
        )
        for table, name in cursor.fetchall():
            cursor.execute(f'DROP TRIGGER "{name}" ON {table}')
        for tracked in tracked_models():
            for statement in _postgresql_statements(tracked):
                cursor.execute(statement)
        cursor.execute(
            f"CREATE TRIGGER audit_field_trail_append_only BEFORE UPDATE OR DELETE ON {TRAIL_TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION audit_field_trail_append_only()"
        )


def _sqlite_statements(tracked: TrackedModel) -> list[str]:
    statements = []
    table = f'"{tracked.table}"'
    for field in tracked.fields:
        column = f'"{field.column}"'
        for operation, when, row in (
            ("insert", f"COALESCE(CAST(NEW.{column} AS TEXT), '') <> ''", "NEW"),
            ("update", f"OLD.{column} IS NOT NEW.{column}", "NEW"),
            ("delete", f"COALESCE(CAST(OLD.{column} AS TEXT), '') <> ''", "OLD"),
        ):
            old = "NULL" if operation == "insert" or field.hidden else f"CAST(OLD.{column} AS TEXT)"
            new = "NULL" if operation == "delete" or field.hidden else f"CAST(NEW.{column} AS TEXT)"
            event = "UPDATE OF " + column if operation == "update" else operation.upper()
            currency = (
                f'COALESCE({row}."{field.currency[4:]}", \'\')'
                if field.currency.startswith("col:")
                else _literal(field.currency[5:])
            )
            statements.append(
                f"CREATE TRIGGER audit_field_trail_{tracked.table}_{field.column}_{operation} "
                f"AFTER {event} ON {table} FOR EACH ROW WHEN {when} BEGIN "
                f"INSERT INTO {TRAIL_TABLE} ({_COLUMNS}) VALUES ({_literal(tracked.label)}, "
                f'CAST({row}."{tracked.pk_column}" AS TEXT), {_literal(field.name)}, {_literal(operation)}, '
                f"{old}, {new}, {int(field.hidden)}, {currency}, audit_trail_actor_id(), audit_trail_actor_label(), "
                "audit_trail_correlation_id(), strftime('%Y-%m-%d %H:%M:%f', 'now')); END"
            )
    return statements


def _install_sqlite(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'audit_field_trail_%'")
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP TRIGGER "{name}"')
        for tracked in tracked_models():
            for statement in _sqlite_statements(tracked):
                cursor.execute(statement)
        for event in ("UPDATE", "DELETE"):
            cursor.execute(
                f"CREATE TRIGGER audit_field_trail_append_only_{event.lower()} BEFORE {event} ON {TRAIL_TABLE} "
                f"BEGIN SELECT RAISE(ABORT, '{TRAIL_TABLE} is append-only'); END"
            )


def install_triggers(connection: BaseDatabaseWrapper) -> None:
    """(Re)create the trail's triggers for the tracked fields on this database, dropping stale ones."""
    if connection.vendor == "postgresql":
        _install_postgresql(connection)
    elif connection.vendor == "sqlite":
        _install_sqlite(connection)
    else:
        raise NotImplementedError(f"the field-change trail has no triggers for {connection.vendor}")


# --- Telling the trigger who acts ----------------------------------------------------------------


def _context_values() -> tuple[str, str, str] | None:
    actor_id, label = current_actor()
    correlation = current_correlation_id()
    if actor_id is None and not label and not correlation:
        return None
    return ("" if actor_id is None else str(actor_id), label, correlation)


@cache
def _update_markers() -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(
        (f'"{tracked.table}"', tuple(f'"{field.column}" =' for field in tracked.fields)) for tracked in tracked_models()
    )


def writes_tracked_fields(sql: str) -> bool:
    """Does this statement (as Django writes them) insert, delete or SET a tracked column?"""
    head = sql.lstrip()[:6].upper()
    if head not in ("INSERT", "UPDATE", "DELETE"):
        return False
    for table, columns in _update_markers():
        if table in sql and (head != "UPDATE" or any(column in sql for column in columns)):
            return True
    return False


_SET_CONTEXT = (
    "SELECT set_config('audit.actor_id', %s, true), set_config('audit.actor_label', %s, true), "
    "set_config('audit.correlation_id', %s, true)"
)


def send_context_to_postgresql(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """Django execute wrapper (installed on every PostgreSQL connection)."""
    values = _context_values() if writes_tracked_fields(sql) else None
    if values is None:
        return execute(sql, params, many, context)
    connection = context["connection"]
    if connection.in_atomic_block or not connection.get_autocommit():
        context["cursor"].execute(_SET_CONTEXT, values)
        return execute(sql, params, many, context)
    # Autocommit: set_config(..., true) lasts one transaction, so the setting and the write share one.
    with transaction.atomic(using=connection.alias):
        context["cursor"].execute(_SET_CONTEXT, values)
        return execute(sql, params, many, context)


def attach_context_source(connection: BaseDatabaseWrapper) -> None:
    """Called for every new database connection (connection_created)."""
    if connection.vendor == "postgresql":
        if send_context_to_postgresql not in connection.execute_wrappers:
            connection.execute_wrappers.append(send_context_to_postgresql)
    elif connection.vendor == "sqlite":
        raw = connection.connection
        raw.create_function("audit_trail_actor_id", 0, lambda: current_actor()[0])
        raw.create_function("audit_trail_actor_label", 0, lambda: current_actor()[1])
        raw.create_function("audit_trail_correlation_id", 0, current_correlation_id)
