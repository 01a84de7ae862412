"""WebhookEvent, moved here from audit: state only, the table audit_webhookevent already exists."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("audit", "0002_move_claim_and_webhookevent")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="WebhookEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("provider", models.CharField(max_length=20)),
                        ("event_id", models.CharField(max_length=255)),
                        ("event_type", models.CharField(max_length=100)),
                        ("received_at", models.DateTimeField()),
                    ],
                    options={
                        "db_table": "audit_webhookevent",
                        "constraints": [
                            models.UniqueConstraint(fields=("provider", "event_id"), name="webhook_event_once")
                        ],
                    },
                )
            ],
            database_operations=[],
        )
    ]
