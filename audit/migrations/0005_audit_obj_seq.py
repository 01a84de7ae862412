from django.db import migrations, models


class Migration(migrations.Migration):
    """Apart from 0004, whose data update must commit before the table is altered again."""

    dependencies = [
        ("audit", "0004_audit_hash_chain"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="auditentry",
            constraint=models.UniqueConstraint(fields=("content_type", "object_id", "seq"), name="audit_obj_seq"),
        ),
    ]
