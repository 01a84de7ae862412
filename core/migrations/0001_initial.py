"""Claim, moved here from audit: state only, the table audit_claim already exists."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("audit", "0002_move_claim_and_webhookevent")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Claim",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("key", models.CharField(max_length=255, unique=True)),
                        (
                            "token",
                            models.CharField(
                                help_text="Identifies the holder, so a stale holder cannot release a taken-over claim.",
                                max_length=64,
                            ),
                        ),
                        ("claimed_at", models.DateTimeField()),
                        ("lease_expires_at", models.DateTimeField(blank=True, null=True)),
                        ("completed_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={"db_table": "audit_claim"},
                )
            ],
            database_operations=[],
        )
    ]
