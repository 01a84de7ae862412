"""Payout.provider_status(_at): what Wise said, apart from the reviewer's note (Payout.reason).

Until now the settlement (Wise webhook, poller) and the dispatch's refusal wrote their own text
into `reason`, over the reviewer's note. For a paid or failed payout whose note is exactly the text
its settling transition's audit row carries (written by a system actor), that text moves to
provider_status and the note is restored from the last decision a person made on it (its audit
row keeps the reason as written). Any other row is left as it is. Labels and help texts are
rewritten for finance staff.
"""

from django.db import migrations, models

SETTLED = ("paid", "failed")
SETTLING_TRANSITIONS = ("mark_paid", "mark_failed", "mark_paid_after_failure")


def split_provider_status(apps, schema_editor):
    Payout = apps.get_model("payouts", "Payout")
    AuditEntry = apps.get_model("audit", "AuditEntry")
    ContentType = apps.get_model("contenttypes", "ContentType")
    payout_type = ContentType.objects.filter(app_label="payouts", model="payout").first()
    if payout_type is None:  # a fresh database: no payout has a trail yet
        return
    for payout in Payout.objects.filter(status__in=SETTLED).exclude(reason="").only("pk", "reason").iterator():
        trail = AuditEntry.objects.filter(content_type=payout_type, object_id=str(payout.pk)).order_by("-id")
        settled = trail.filter(actor__isnull=True, transition__in=SETTLING_TRANSITIONS).first()
        if settled is None or settled.reason != payout.reason:
            continue  # the note is not the provider's text: it stays
        note = trail.filter(actor__isnull=False).values_list("reason", flat=True).first() or ""
        Payout.objects.filter(pk=payout.pk).update(
            reason=note, provider_status=payout.reason[:500], provider_status_at=settled.at
        )


class Migration(migrations.Migration):
    dependencies = [
        ("payouts", "0006_approved_recipient_snapshot"),
        ("audit", "0005_audit_obj_seq"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AddField(
            model_name="payout",
            name="provider_status",
            field=models.CharField(
                blank=True,
                help_text="What Wise last reported about this payment.",
                max_length=500,
                verbose_name="status at Wise",
            ),
        ),
        migrations.AddField(
            model_name="payout",
            name="provider_status_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="reported by Wise at"),
        ),
        migrations.AlterField(
            model_name="payout",
            name="dispatched_at",
            field=models.DateTimeField(
                blank=True, help_text="When the payment was handed to Wise.", null=True, verbose_name="sent to Wise at"
            ),
        ),
        migrations.AlterField(
            model_name="payout",
            name="reason",
            field=models.TextField(
                blank=True,
                help_text="Why the reviewer approved, rejected or re-opened this payout.",
                verbose_name="reviewer's note",
            ),
        ),
        migrations.AlterField(
            model_name="payout",
            name="wise_funded_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="Wise transfer funded at"),
        ),
        migrations.AlterField(
            model_name="payout",
            name="wise_state_at",
            field=models.DateTimeField(blank=True, help_text="When Wise says the transfer reached it.", null=True),
        ),
        migrations.AlterField(
            model_name="payoutattempt",
            name="wise_state_at",
            field=models.DateTimeField(blank=True, help_text="When Wise says the transfer reached it.", null=True),
        ),
        migrations.RunPython(split_provider_status, migrations.RunPython.noop),
    ]
