"""Post the commissions recorded before the ledger existed (affiliates.ledger_backfill): idempotent,
with the live code's transfer ids, so check_ledger passes after it."""

from django.db import migrations


def backfill(apps, schema_editor):
    from affiliates.ledger_backfill import backfill_ledger

    backfill_ledger(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("affiliates", "0004_commission_precision_and_adjustments"),
        ("ledger", "0002_transfer_immutable"),
        ("audit", "0002_move_claim_and_webhookevent"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
