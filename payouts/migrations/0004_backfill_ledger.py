"""Book the payouts recorded before the ledger existed (payouts.ledger_backfill): a reservation for
each live payout's current attempt, a reservation and its post for each paid one; idempotent, with
the live code's transfer ids, after the commissions' backfill (affiliates 0005)."""

from django.db import migrations


def backfill(apps, schema_editor):
    from payouts.ledger_backfill import backfill_ledger

    backfill_ledger(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("payouts", "0003_backfill_payout_attempts"),
        ("affiliates", "0005_backfill_ledger"),
        ("ledger", "0002_transfer_immutable"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
