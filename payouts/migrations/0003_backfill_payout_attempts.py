"""One PayoutAttempt row for every payout that already has a Wise transfer, so that its later
events (a bounce, a late success) are still recognised through PayoutAttempt.wise_transfer_id.

Only the current attempt is known: earlier attempts' transfer ids were cleared by the old retry.
"""

import uuid

from django.db import migrations

# payouts.keys.WISE_TRANSACTION_NAMESPACE, copied: a migration must not change with the code.
WISE_TRANSACTION_NAMESPACE = uuid.UUID("6f1f3c1e-5d7a-4f51-9a0b-0b6c1f0a4700")


def backfill(apps, schema_editor):
    Payout = apps.get_model("payouts", "Payout")
    PayoutAttempt = apps.get_model("payouts", "PayoutAttempt")
    known = set(PayoutAttempt.objects.values_list("payout_id", "number"))
    rows = [
        PayoutAttempt(
            payout_id=payout.pk,
            number=payout.attempt,
            customer_transaction_id=str(
                uuid.uuid5(WISE_TRANSACTION_NAMESPACE, f"payout:{payout.pk}:attempt:{payout.attempt}")
            ),
            wise_quote_id=payout.wise_quote_id,
            wise_transfer_id=payout.wise_transfer_id,
            wise_state=payout.wise_state,
            wise_state_at=payout.wise_state_at,
            dispatched_at=payout.dispatched_at,
            funded_at=payout.wise_funded_at,
        )
        for payout in Payout.objects.exclude(wise_transfer_id="").order_by("pk").iterator()
        if (payout.pk, payout.attempt) not in known
    ]
    PayoutAttempt.objects.bulk_create(rows, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [("payouts", "0002_payout_attempts")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
