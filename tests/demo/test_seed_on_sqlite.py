"""The demo's own database: `bin/demo` migrates and seeds an SQLite file (the embedded default).
Run here as it runs there, in a fresh process on a fresh file, so a PostgreSQL-only statement on
the seed's path (a data-modifying WITH, sha256() ...) fails this test rather than the README's
first command.

The seed runs the loyalty tick once against the Stripe stand-in (bin/demo starts the stand-ins
first); here the stand-in runs in this process, so the test reads the codes it handed out.
"""

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loyalty import demo as loyalty_demo
from loyalty.models import PRO_PLAN
from sandbox.core import RunningStandIn
from sandbox.stripe import StripeStandIn

ROOT = Path(__file__).resolve().parents[2]
MARK = "@@seeded@@ "  # the line of the inspection script's JSON, among whatever else the command logs

pytestmark = pytest.mark.slow

# What the seeded database holds, as the demo's screens will show it: the row count of every admin
# screen of the product's own apps, the loyalty discounts by status, and the users who can sign in.
INSPECT = f"""
import json
from pathlib import Path
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from loyalty.models import LoyaltyDiscount

root = Path(settings.BASE_DIR).resolve()
paths = {{model: Path(apps.get_app_config(model._meta.app_label).path).resolve() for model in admin.site._registry}}
screens = {{
    model._meta.label: model._default_manager.count()
    for model, path in paths.items()
    if path.is_relative_to(root) and "site-packages" not in path.parts
}}
discounts = {{}}
for status in LoyaltyDiscount.objects.values_list("status", flat=True):
    discounts[status] = discounts.get(status, 0) + 1
# created without a password (the loyalty subscribers): an empty hash, which no password matches
logins = sorted(u.username for u in get_user_model().objects.exclude(password="") if u.has_usable_password())
print({MARK!r} + json.dumps({{"screens": screens, "discounts": discounts, "logins": logins}}))
"""
# "name / password" pairs in bin/demo's banner (the text between `cat <<MSG` and `MSG`)
BANNER_LOGIN = re.compile(r"\b([a-z_]+) / (demo-pass-[a-z-]+)")


@pytest.fixture(scope="module")
def stripe() -> Iterator[RunningStandIn]:
    running = RunningStandIn(StripeStandIn())
    yield running
    running.stop()


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory, stripe: RunningStandIn) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "DJANGO_SETTINGS", "CELERY_", "TEST_", "STRIPE_"))
    }
    return env | {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.sqlite3'}",
        "DJANGO_READ_DOT_ENV_FILE": "false",
        "CELERY_BROKER_URL": "memory://",  # not the demo's var/broker: what the seed queues goes nowhere
        "STRIPE_API_BASE": stripe.url,
    }


def manage(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def inspect(env: dict[str, str]) -> dict:
    printed = manage("shell", "--no-imports", "-c", INSPECT, env=env)
    [line] = [line for line in printed.splitlines() if line.startswith(MARK)]
    return json.loads(line.removeprefix(MARK))


@pytest.fixture(scope="module")
def seeded(demo_env: dict[str, str], stripe: RunningStandIn) -> dict:
    """Migrate and seed once; the state after it, what the seed printed, and the stand-in's codes."""
    manage("migrate", "--noinput", env=demo_env)
    printed = manage("seed_demo", env=demo_env)
    return {"printed": printed, "state": inspect(demo_env), "codes": len(stripe.app.promotion_codes)}


def test_the_demo_migrates_seeds_and_balances_its_books_on_sqlite(seeded, demo_env):
    assert "Demo data ready." in seeded["printed"]
    assert "ledger OK" in manage("check_ledger", env=demo_env)
    assert "audit trail OK" in manage("verify_audit_trail", env=demo_env)


def test_the_seed_fills_the_screens_and_grants_the_due_loyalty_discounts_at_once(seeded):
    screens = seeded["state"]["screens"]
    # the screens a visitor opens first, before the worker has run anything
    for label in (
        "affiliates.Affiliate",
        "affiliates.Commission",
        "affiliates.TierEvent",
        "payouts.Payout",
        "pos_sync.PosConnection",
        "pos_sync.Order",
        "pos_sync.SyncJob",
        "loyalty.Subscription",
        "loyalty.LoyaltyDiscount",
        "ledger.Account",
        "ledger.Transfer",
        "audit.AuditEntry",
    ):
        assert screens[label] > 0, (label, screens)
    # the loyalty tick ran once: every Pro subscriber past a year has its discount, with a Stripe code
    due = sum(1 for _, plan, months in loyalty_demo.SUBSCRIBERS if plan == PRO_PLAN and months >= 12)
    assert seeded["state"]["discounts"] == {"applied": due}
    assert seeded["codes"] == due
    assert f"loyalty tick: {due} anniversary discount(s) granted" in seeded["printed"]


def test_seeding_again_changes_nothing(seeded, demo_env, stripe):
    printed = manage("seed_demo", env=demo_env)

    assert inspect(demo_env) == seeded["state"]
    assert len(stripe.app.promotion_codes) == seeded["codes"]  # no second code asked of Stripe
    assert "loyalty tick: 0 anniversary discount(s) granted" in printed


def test_the_banner_lists_every_demo_login_and_explains_beacons(seeded, demo_env):
    script = (ROOT / "bin" / "demo").read_text()
    banner = script.split("cat <<MSG", 1)[1].split("\nMSG", 1)[0]
    listed = dict(BANNER_LOGIN.findall(banner))

    # every user the seed gave a password is in the banner, and with the password that signs them in
    assert sorted(listed) == seeded["state"]["logins"], (listed, seeded["state"]["logins"])
    check = "; ".join(
        f"assert User.objects.get(username={name!r}).check_password({password!r}), {name!r}"
        for name, password in listed.items()
    )
    manage("shell", "--no-imports", "-c", f"from django.contrib.auth.models import User; {check}", env=demo_env)
    # ... and next to the logs it prints, one sentence says what a beacon is
    [beacons] = [line for line in banner.splitlines() if line.strip().startswith("Beacons:")]
    assert "[BEACON:<kind>]" in beacons
