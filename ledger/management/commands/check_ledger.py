"""manage.py check_ledger: verify the books (ledger.checks); exit 1 with a report on any difference,
which also raises the critical beacon `ledger_check_failed`."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ledger.checks import verify_books


class Command(BaseCommand):
    help = "Verify the books: debits = credits per currency, columns = sums of transfers, pendings resolved once."

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_books()
        if not report.ok:
            self.stderr.write(report.summary())
            raise CommandError(f"ledger check failed: {len(report.findings)} problem(s)")
        self.stdout.write(report.summary())
