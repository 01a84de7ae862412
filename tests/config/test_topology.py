"""Settings for the production topology (config.topology): PgBouncer in transaction pooling mode, and
RabbitMQ or Redis as the broker.

The settings module is loaded in fresh processes configured by their environment alone (as
tests/config/test_settings.py does); the functions behind it are checked directly; and what the
transaction-mode database settings are for is checked on PostgreSQL itself: no prepared statement
and no server-side cursor outlives a transaction.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.backends.postgresql.base import DatabaseWrapper

from config.topology import TRANSACTION_POOL_CONN_MAX_AGE, broker_settings, pooled_database

ROOT = Path(__file__).resolve().parents[2]
OWN_VARIABLES = ("DJANGO_", "DATABASE_", "DB_", "CELERY_")
PGBOUNCER_URL = "postgres://app:pw@pgbouncer.internal:6432/backoffice?sslmode=require"
RABBITMQ_URL = "amqp://app:pw@rabbitmq.internal:5672/backoffice"
SHOW = """
import json, django
django.setup()
from django.conf import settings as s
from config.celery import app
db = s.DATABASES["default"]
queues = app.conf.task_queues or []
print(json.dumps({
    "db": {k: db.get(k) for k in ("ENGINE", "HOST", "PORT", "OPTIONS", "CONN_MAX_AGE", "CONN_HEALTH_CHECKS",
                                   "DISABLE_SERVER_SIDE_CURSORS")},
    "transport_options": app.conf.broker_transport_options,
    "queues": [[q.name, q.exchange.name, q.exchange.type, q.routing_key, q.durable, q.queue_arguments] for q in queues],
    "default_queue_type": app.conf.task_default_queue_type,
    "exchange_type": app.conf.task_default_exchange_type,
    "acks_late": app.conf.task_acks_late,
    "reject_on_worker_lost": app.conf.task_reject_on_worker_lost,
    "prefetch": app.conf.worker_prefetch_multiplier,
}))
"""


def _start(variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_VARIABLES)}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DJANGO_READ_DOT_ENV_FILE="false", DJANGO_DEBUG="true")
    env.update(variables)
    return subprocess.run([sys.executable, "-c", SHOW], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _settings(variables: dict[str, str]) -> dict[str, Any]:
    process = _start(variables)
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


# --- the settings module, started as a web or worker process starts ------------------------------


def test_transaction_pooling_and_rabbitmq_from_the_environment() -> None:
    shown = _settings(
        {"DATABASE_URL": PGBOUNCER_URL, "DATABASE_POOL_MODE": "transaction", "CELERY_BROKER_URL": RABBITMQ_URL}
    )

    assert shown["db"] == {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "pgbouncer.internal",
        "PORT": 6432,
        "OPTIONS": {"sslmode": "require", "prepare_threshold": None, "server_side_binding": False},
        "CONN_MAX_AGE": TRANSACTION_POOL_CONN_MAX_AGE,
        "CONN_HEALTH_CHECKS": True,
        "DISABLE_SERVER_SIDE_CURSORS": True,
    }
    assert shown["queues"] == [["celery", "celery", "topic", "celery", True, {"x-queue-type": "quorum"}]]
    assert shown["default_queue_type"] == "quorum" and shown["exchange_type"] == "topic"
    assert shown["transport_options"] == {"confirm_publish": True}
    assert (shown["acks_late"], shown["reject_on_worker_lost"], shown["prefetch"]) == (True, True, 1)


def test_direct_postgresql_and_redis_stay_the_default() -> None:
    shown = _settings(
        {"DATABASE_URL": "postgres://app@db.internal:5432/backoffice", "CELERY_BROKER_URL": "redis://redis:6379/0"}
    )

    assert shown["db"]["OPTIONS"] == {} and shown["db"]["CONN_MAX_AGE"] == 0
    assert shown["db"]["DISABLE_SERVER_SIDE_CURSORS"] is None and shown["db"]["CONN_HEALTH_CHECKS"] is False
    assert shown["queues"] == [] and shown["default_queue_type"] == "classic" and shown["exchange_type"] == "direct"
    assert shown["transport_options"] == {"visibility_timeout": 3600}
    assert (shown["acks_late"], shown["reject_on_worker_lost"], shown["prefetch"]) == (True, True, 1)


def test_an_unknown_pool_mode_stops_the_process() -> None:
    process = _start({"DATABASE_URL": PGBOUNCER_URL, "DATABASE_POOL_MODE": "statement"})

    assert process.returncode != 0
    last_line = process.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: DATABASE_POOL_MODE"), last_line


# --- the functions ------------------------------------------------------------------------------


POSTGRES: dict[str, Any] = {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": "backoffice",
    "HOST": "pgbouncer",
    "PORT": 6432,
}


def test_session_mode_changes_nothing_but_the_connection_age() -> None:
    assert pooled_database(POSTGRES, pool_mode="session", conn_max_age=None) == {
        **POSTGRES,
        "OPTIONS": {},
        "CONN_MAX_AGE": 0,
    }
    assert pooled_database(POSTGRES, pool_mode="session", conn_max_age=30)["CONN_MAX_AGE"] == 30


def test_transaction_mode_overrides_options_that_would_keep_state_on_the_server() -> None:
    risky = {**POSTGRES, "OPTIONS": {"prepare_threshold": 5, "server_side_binding": True, "sslmode": "require"}}

    database = pooled_database(risky, pool_mode="transaction", conn_max_age=0)

    assert database["OPTIONS"] == {"prepare_threshold": None, "server_side_binding": False, "sslmode": "require"}
    assert database["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert database["CONN_MAX_AGE"] == 0  # DB_CONN_MAX_AGE, when set, wins over the default
    assert risky["OPTIONS"]["prepare_threshold"] == 5  # the caller's dict is not changed


def test_a_connection_age_in_the_url_is_kept() -> None:
    database = pooled_database({**POSTGRES, "CONN_MAX_AGE": 600}, pool_mode="transaction", conn_max_age=None)
    assert database["CONN_MAX_AGE"] == 600


@pytest.mark.parametrize(
    ("database", "mode", "message"),
    [
        ({**POSTGRES, "OPTIONS": {"pool": True}}, "transaction", "'pool'"),
        ({**POSTGRES, "OPTIONS": {"assume_role": "owner"}}, "transaction", "'assume_role'"),
        ({"ENGINE": "django.db.backends.sqlite3", "NAME": "x"}, "transaction", "PostgreSQL"),
        (POSTGRES, "statement", "must be one of session, transaction"),
    ],
)
def test_refused_combinations(database: dict[str, Any], mode: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        pooled_database(database, pool_mode=mode, conn_max_age=None)


def test_rabbitmq_gets_a_quorum_queue_on_a_topic_exchange_and_publisher_confirms(tmp_path: Path) -> None:
    for url in ("amqp://u:p@rabbit:5672/vhost", "amqps://u:p@rabbit:5671/vhost", "pyamqp://rabbit//"):
        broker = broker_settings(url, visibility_timeout=3600, var_dir=tmp_path)
        assert broker.kind == "amqp"
        assert broker.transport_options == {"confirm_publish": True}
        assert broker.queue_type == "quorum" and broker.exchange_type == "topic"
        assert broker.task_queues is not None
        (queue,) = broker.task_queues
        assert (queue.name, queue.exchange.name, queue.exchange.type, queue.routing_key) == (
            "celery",
            "celery",
            "topic",
            "celery",
        )
        assert queue.durable and queue.queue_arguments == {"x-queue-type": "quorum"}


def test_redis_keeps_the_visibility_timeout_and_celerys_default_queue(tmp_path: Path) -> None:
    broker = broker_settings("redis://redis:6379/0", visibility_timeout=900, var_dir=tmp_path)
    assert (broker.kind, broker.transport_options, broker.task_queues) == ("redis", {"visibility_timeout": 900}, None)
    assert (broker.queue_type, broker.exchange_type) == ("classic", "direct")


def test_the_demos_filesystem_broker_gets_its_folders(tmp_path: Path) -> None:
    broker = broker_settings("filesystem://", visibility_timeout=3600, var_dir=tmp_path)
    assert broker.transport_options["data_folder_in"] == str(tmp_path / "broker")
    assert (tmp_path / "broker" / "processed").is_dir()
    assert broker.task_queues is None


# --- on PostgreSQL: what the transaction-mode settings prevent ----------------------------------


def _prepared_after_repeats(settings_dict: dict[str, Any]) -> int:
    """Run one query 10 times on a new connection made with `settings_dict`; count the statements
    the server keeps prepared for that session (what a pooler would hand to another client)."""
    wrapper = DatabaseWrapper(settings_dict, alias="topology-probe")
    try:
        with wrapper.cursor() as cursor:
            for i in range(10):
                cursor.execute("SELECT %s::int + 1", [i])
            cursor.execute("SELECT count(*) FROM pg_prepared_statements")
            return cursor.fetchone()[0]
    finally:
        wrapper.close()


@pytest.mark.django_db
def test_transaction_mode_leaves_no_prepared_statement_on_the_server() -> None:
    # given: options that make psycopg prepare every statement on the server
    preparing = {**connection.settings_dict, "OPTIONS": {"prepare_threshold": 0, "server_side_binding": True}}

    # then: they do, on a plain connection; and nothing is prepared once made transaction-safe
    assert _prepared_after_repeats(preparing) > 0
    assert _prepared_after_repeats(pooled_database(preparing, pool_mode="transaction", conn_max_age=None)) == 0


def _holdable_cursors_while_iterating() -> int:
    """Iterate a queryset outside any transaction, as dedupe_tier_events does, and count the cursors
    that the server keeps open past the transaction (WITH HOLD) while it does."""
    assert not connection.in_atomic_block
    rows = ContentType.objects.order_by("pk").iterator(chunk_size=1)
    next(rows)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_cursors WHERE is_holdable")
        open_cursors = cursor.fetchone()[0]
    list(rows)
    return open_cursors


@pytest.mark.django_db(transaction=True)
def test_transaction_mode_iterates_without_a_server_side_cursor(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _holdable_cursors_while_iterating() == 1  # Django's default: a WITH HOLD cursor on the server

    pooled = pooled_database(connection.settings_dict, pool_mode="transaction", conn_max_age=None)
    monkeypatch.setitem(connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", pooled["DISABLE_SERVER_SIDE_CURSORS"])

    assert _holdable_cursors_while_iterating() == 0
