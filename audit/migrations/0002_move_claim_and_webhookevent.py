"""Claim moved to core and WebhookEvent to webhooks: the models leave audit's state, the tables stay."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Claim"), migrations.DeleteModel(name="WebhookEvent")],
            database_operations=[],
        )
    ]
