"""The field-change trail on the demo's own database (SQLite): its triggers exist there too, and a
change made from a command is attributed to it. Run as bin/demo runs, in a fresh process on a
fresh file (the PostgreSQL triggers are proven in tests/audit/test_field_trail.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARK = "TRAIL-ON-SQLITE:"

pytestmark = pytest.mark.slow

SCRIPT = f"""
import json
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection
from affiliates.models import Affiliate
from audit.models import FieldChange
from audit.selectors import last_field_change

user = get_user_model().objects.create_user("trail_bea", password="x")
affiliate = Affiliate.objects.create(user=user, wise_recipient_id="rcpt-1")
Affiliate.objects.filter(pk=affiliate.pk).update(wise_recipient_id="rcpt-2")
change = last_field_change(affiliate, "wise_recipient_id")
try:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_fieldchange")
    refused = False
except DatabaseError:
    refused = True
print({MARK!r} + json.dumps({{
    "old": change.old_value, "new": change.new_value, "actor": change.actor_label,
    "created": sorted(FieldChange.objects.filter(object_id=str(affiliate.pk), model="affiliates.affiliate",
                                                 operation="insert").values_list("field", flat=True)),
    "delete_refused": refused,
}}))
"""


def test_the_trail_records_changes_on_sqlite_and_names_the_command(tmp_path):
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "DJANGO_SETTINGS", "TEST_"))
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "DJANGO_READ_DOT_ENV_FILE": "false",
        "CELERY_BROKER_URL": "memory://",
    }
    for args in (["migrate", "--noinput"], ["shell", "-c", SCRIPT]):
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith(MARK))
    assert json.loads(line[len(MARK) :]) == {
        "old": "rcpt-1",
        "new": "rcpt-2",
        "actor": "system:command:shell",
        "created": ["commission_rate", "kyc_status", "wise_recipient_id"],
        "delete_refused": True,
    }
