"""What the settings need to know about the servers between the processes and their data: a
connection pooler in front of PostgreSQL, and which Celery broker. docs/DEPLOYMENT.md explains the
choices; config/settings.py calls these functions with the environment's values, and
tests/config/test_topology.py checks them without starting Django.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

# "session": one server connection per client connection for as long as it lives (PostgreSQL
# directly, or PgBouncer with pool_mode = session). "transaction": PgBouncer with pool_mode =
# transaction, where consecutive transactions of one client may run on different server connections.
POOL_MODES = ("session", "transaction")
# A persistent client connection to PgBouncer holds no server connection between transactions, so
# keeping it costs PgBouncer a few kB and saves a TCP and auth handshake per request or task.
TRANSACTION_POOL_CONN_MAX_AGE = 60


def pooled_database(database: dict[str, Any], *, pool_mode: str, conn_max_age: int | None) -> dict[str, Any]:
    """DATABASES["default"] for `pool_mode`. In transaction mode nothing may outlive a transaction
    on the server: no server-side cursor (Django's .iterator() declares one WITH HOLD outside a
    transaction), no prepared statement (psycopg prepares a query after 5 executions unless
    prepare_threshold is None; Django 5.2 already defaults it to None, set here so a copied OPTIONS
    cannot re-enable it), no server-side parameter binding, no SET ROLE (assume_role) and no
    psycopg pool of Django's own in front of PgBouncer's."""
    if pool_mode not in POOL_MODES:
        raise ImproperlyConfigured(f"DATABASE_POOL_MODE must be one of {', '.join(POOL_MODES)}, not {pool_mode!r}.")
    database = {**database, "OPTIONS": {**database.get("OPTIONS", {})}}
    if pool_mode == "session":
        database.setdefault("CONN_MAX_AGE", 0 if conn_max_age is None else conn_max_age)
        return database
    if database["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_POOL_MODE=transaction is for PostgreSQL behind PgBouncer.")
    for option, problem in (("pool", "a second pool in front of PgBouncer's"), ("assume_role", "SET ROLE")):
        if database["OPTIONS"].get(option):
            raise ImproperlyConfigured(f"DATABASE_POOL_MODE=transaction: OPTIONS {option!r} ({problem}) is unsafe.")
    database["OPTIONS"].update(prepare_threshold=None, server_side_binding=False)
    database["DISABLE_SERVER_SIDE_CURSORS"] = True
    database.setdefault("CONN_MAX_AGE", TRANSACTION_POOL_CONN_MAX_AGE if conn_max_age is None else conn_max_age)
    database["CONN_HEALTH_CHECKS"] = True  # a kept connection that PgBouncer closed is replaced, not used
    return database


# The one queue every task goes to (tasks are routed nowhere else), and its exchange.
TASK_QUEUE = "celery"


@dataclass(frozen=True)
class BrokerSettings:
    """The CELERY_* settings that depend on the broker. `kind` is amqp, redis, filesystem or memory."""

    kind: str
    transport_options: dict[str, Any]
    task_queues: list[Queue] | None = None
    queue_type: str = "classic"
    exchange_type: str = "direct"


def broker_settings(broker_url: str, *, visibility_timeout: int, var_dir: Path) -> BrokerSettings:
    """amqp:// (RabbitMQ, production with many worker hosts): a quorum queue, replicated and durable,
    which RabbitMQ delivers to one consumer at a time and takes back only on that delivery's ack or
    the consumer's death; publisher confirms, so an enqueue returns only once RabbitMQ has the
    message; a topic exchange, which Celery needs to delay a countdown (the Wise dispatch's retry
    backoff) in RabbitMQ itself: on a quorum queue, whose prefetch is fixed, a countdown held in a
    worker would block it. redis:// (the default outside the demo): an unacknowledged message is
    delivered again after `visibility_timeout` seconds. filesystem:// (the demo's embedded broker)
    needs its folders."""
    scheme = broker_url.split("://", 1)[0].split("+", 1)[0]
    if scheme in ("amqp", "amqps", "pyamqp"):
        exchange = Exchange(TASK_QUEUE, type="topic", durable=True)
        queue = Queue(
            TASK_QUEUE, exchange, routing_key=TASK_QUEUE, durable=True, queue_arguments={"x-queue-type": "quorum"}
        )
        return BrokerSettings(
            kind="amqp",
            transport_options={"confirm_publish": True},
            task_queues=[queue],
            queue_type="quorum",
            exchange_type="topic",
        )
    if scheme == "filesystem":
        broker_dir = var_dir / "broker"
        (broker_dir / "processed").mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(broker_dir),
            "data_folder_out": str(broker_dir),
            "processed_folder": str(broker_dir / "processed"),
            "control_folder": str(broker_dir / "control"),  # kombu's default is ./control, in the cwd
            "store_processed": False,
        }
        return BrokerSettings(kind="filesystem", transport_options=options)
    # Keep countdowns well below the timeout: an unacknowledged message is delivered again after it.
    return BrokerSettings(kind=scheme, transport_options={"visibility_timeout": visibility_timeout})
