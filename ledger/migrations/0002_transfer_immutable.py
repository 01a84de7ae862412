"""Transfers are immutable: a PostgreSQL trigger refuses every UPDATE and DELETE of a row of
ledger_transfer, whoever sends it (ORM, raw SQL, a shell). A correction is a new transfer.

SQLite (the demo database) has no such trigger: the RunPython operations do nothing there.
TRUNCATE fires no row trigger, so the test database can still be flushed between tests.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION ledger_transfer_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger_transfer is immutable: % of transfer % refused; post a correcting transfer instead',
        TG_OP, OLD.id;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_transfer_immutable
    BEFORE UPDATE OR DELETE ON ledger_transfer
    FOR EACH ROW EXECUTE FUNCTION ledger_transfer_immutable();
"""

DROP = """
DROP TRIGGER IF EXISTS ledger_transfer_immutable ON ledger_transfer;
DROP FUNCTION IF EXISTS ledger_transfer_immutable();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)  # no interpolation: the SQL holds % placeholders of RAISE

    return run


class Migration(migrations.Migration):

    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
