"""The demo's own database: `bin/demo` migrates and seeds an SQLite file (the embedded default).
Run here as it runs there, in a fresh process on a fresh file, so a PostgreSQL-only statement on
the seed's path (a data-modifying WITH, sha256() ...) fails this test rather than the README's
first command."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_the_demo_migrates_seeds_and_balances_its_books_on_sqlite(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "DJANGO_SETTINGS", "CELERY_", "TEST_"))
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "DJANGO_READ_DOT_ENV_FILE": "false",
        "CELERY_BROKER_URL": "memory://",  # not the demo's var/broker: what the seed queues goes nowhere
    }

    printed = {}
    for command in ("migrate --noinput", "seed_demo", "check_ledger", "verify_audit_trail"):
        done = manage(*command.split(), env=env)
        assert done.returncode == 0, f"manage.py {command}:\n{done.stdout}\n{done.stderr}"
        printed[command] = done.stdout

    assert "ledger OK" in printed["check_ledger"]
    assert "audit trail OK" in printed["verify_audit_trail"]
