"""Segregation of duties and dual approval (payouts.authority, payouts.services.approvals).

- Payout.requested_by: who asked for the money. Existing rows get the affiliate's user, the only
  requester the product had (the API and the portal let an affiliate request only for itself).
- PayoutApproval: one row per super-admin approval of a payout above the dual-approval threshold.
- The model permission payouts.review_payout is gone: reviews are for super-admins, and a
  permission that grants nothing must not look grantable in the admin (its rows are deleted, with
  any user or group assignment of it).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def requested_by_the_affiliate(apps, schema_editor):
    Payout = apps.get_model("payouts", "Payout")
    Affiliate = apps.get_model("affiliates", "Affiliate")
    payee = Affiliate.objects.filter(pk=OuterRef("affiliate_id")).values("user_id")[:1]
    Payout.objects.filter(requested_by__isnull=True).update(requested_by_id=Subquery(payee))


def drop_review_permission(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label="payouts", codename="review_payout").delete()


class Migration(migrations.Migration):

    dependencies = [
        ('payouts', '0004_backfill_ledger'),
        ('affiliates', '0005_backfill_ledger'),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='payout',
            options={'ordering': ['-created_at', '-id']},
        ),
        migrations.AddField(
            model_name='payout',
            name='requested_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.RunPython(requested_by_the_affiliate, migrations.RunPython.noop),
        migrations.RunPython(drop_review_permission, migrations.RunPython.noop),
        migrations.CreateModel(
            name='PayoutApproval',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('attempt', models.PositiveIntegerField()),
                ('amount', models.DecimalField(decimal_places=2, max_digits=12)),
                ('currency', models.CharField(max_length=3)),
                ('wise_recipient_id', models.CharField(blank=True, max_length=64)),
                ('reason', models.TextField(blank=True)),
                ('correlation_id', models.CharField(blank=True, help_text='Request or task id.', max_length=64)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('voided_at', models.DateTimeField(blank=True, null=True)),
                ('void_reason', models.CharField(blank=True, max_length=200)),
                ('approver', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('payout', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='approvals', to='payouts.payout')),
            ],
            options={
                'ordering': ['payout', 'created_at', 'id'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('voided_at__isnull', True)), fields=('payout', 'approver'), name='payout_approval_once')],
            },
        ),
    ]
