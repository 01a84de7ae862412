"""Payout.approved_recipient_id: the Wise recipient the approval approved; the dispatch pays it only.

Payouts approved before this snapshot existed and not yet sent (approved, processing) get the
affiliate's current recipient, the one the dispatch would have read, so the dispatch never meets
an empty snapshot for them (it refuses one loudly). Settled rows (paid, failed, rejected,
cancelled) and requested ones stay null: a retry or a re-open goes back to review, and its new
approval writes the snapshot.
"""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery

IN_FLIGHT = ("approved", "processing")


def snapshot_in_flight_recipients(apps, schema_editor):
    Payout = apps.get_model("payouts", "Payout")
    Affiliate = apps.get_model("affiliates", "Affiliate")
    recipient = Affiliate.objects.filter(pk=OuterRef("affiliate_id")).values("wise_recipient_id")[:1]
    Payout.objects.filter(status__in=IN_FLIGHT, approved_recipient_id__isnull=True).update(
        approved_recipient_id=Subquery(recipient)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("payouts", "0005_requested_by_and_approvals"),
        ("affiliates", "0005_backfill_ledger"),
    ]

    operations = [
        migrations.AddField(
            model_name="payout",
            name="approved_recipient_id",
            field=models.CharField(blank=True, default=None, max_length=64, null=True),
        ),
        migrations.RunPython(snapshot_in_flight_recipients, migrations.RunPython.noop),
    ]
