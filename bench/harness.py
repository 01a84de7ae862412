"""What every bench script shares: Django on a PostgreSQL database of its own, the machine's
description, medians and Markdown tables.

Import it before anything from Django or the project:

    from harness import setup
    setup("transitions")   # DATABASE_URL -> postgres://.../bench_transitions, created and migrated

BENCH_DATABASE_URL names the server (default postgres://root@127.0.0.1:5432/); each script gets
its own database on it, so one script's rows never skew another's figures. Logging is set to
ERROR: a benchmark that loses races on purpose would otherwise print a beacon line per race.
"""

import os
import platform
import statistics
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgres://root@127.0.0.1:5432/"


def setup(name: str) -> str:
    """Point Django at bench_<name>, create it if missing, django.setup() and migrate. Returns the URL."""
    sys.path.insert(0, str(ROOT))
    parts = urlsplit(os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER))
    server = f"{parts.scheme}://{parts.netloc}"  # any database name in it is replaced by bench_<name>
    url = f"{server}/bench_{name}"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    os.environ["LOG_LEVEL"] = "ERROR"
    _create_database(server, f"bench_{name}")

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return url


def _create_database(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def machine() -> dict[str, str]:
    """nproc, memory, PostgreSQL, Python and Django versions, and the load when the run started."""
    from django import get_version
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "cpus (nproc)": str(os.cpu_count()),
        "cpu model": _cpu_model(),
        "memory": f"{memory_kb / 1024 / 1024:.1f} GiB",
        "PostgreSQL": postgres,
        "Python / Django": f"{platform.python_version()} / {get_version()}",
        "load average (1, 5, 15 min) at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_revision() -> str:
    """The commit checked out (read from .git, without running git)."""
    head = (ROOT / ".git" / "HEAD").read_text().strip() if (ROOT / ".git" / "HEAD").exists() else ""
    if head.startswith("ref: "):
        ref = ROOT / ".git" / head[5:]
        if ref.exists():
            return ref.read_text().strip()[:7]
        packed = ROOT / ".git" / "packed-refs"
        for line in packed.read_text().splitlines() if packed.exists() else []:
            if line.endswith(head[5:]):
                return line[:7]
        return "unknown"
    return head[:7] or "unknown"


def load_now() -> float:
    return os.getloadavg()[0]


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_table() -> str:
    facts = {**machine(), "git revision": git_revision()}
    return table(["machine", ""], facts.items())
