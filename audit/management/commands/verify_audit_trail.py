"""manage.py verify_audit_trail: recompute every audit row's hash chain (audit.chain); exit 1 with
one line per problem (an edited, inserted or deleted row) if any."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.chain import verify_audit_trail


class Command(BaseCommand):
    help = "Verify the audit trail's hash chains: edited, inserted and deleted rows."

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_audit_trail()
        if not report.ok:
            self.stderr.write(report.summary())
            raise CommandError(f"audit trail broken: {len(report.problems)} problem(s)")
        self.stdout.write(report.summary())
