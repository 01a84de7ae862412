"""The program's default tiers: Bronze 20% from 0 and Gold 25% from 1,500.00 (AFFILIATE_CURRENCY).

Self-contained on purpose (no import of app code that may change later). Idempotent: a tier that
already exists under its name is left as the admins edited it.
"""

from decimal import Decimal

from django.db import migrations

DEFAULT_TIERS = [
    ("Bronze", 20, Decimal("0.00")),
    ("Gold", 25, Decimal("1500.00")),
]


def create_default_tiers(apps, schema_editor):
    Tier = apps.get_model("affiliates", "Tier")
    for name, rate, threshold in DEFAULT_TIERS:
        Tier.objects.get_or_create(name=name, defaults={"commission_rate": rate, "threshold": threshold})


def remove_default_tiers(apps, schema_editor):
    Tier = apps.get_model("affiliates", "Tier")
    for name, rate, threshold in DEFAULT_TIERS:
        Tier.objects.filter(name=name, commission_rate=rate, threshold=threshold).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("affiliates", "0002_referral_tier_tierevent"),
    ]

    operations = [
        migrations.RunPython(create_default_tiers, remove_default_tiers),
    ]
