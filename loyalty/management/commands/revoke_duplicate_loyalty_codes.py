"""python manage.py revoke_duplicate_loyalty_codes [--dry-run]

Keeps each customer's earliest active anniversary code and deactivates the others at Stripe (stable
idempotency keys), revoking the rows that held them. Safe to run twice: the second run finds nothing.
"""

from collections.abc import Iterable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from core.actors import SystemActor
from loyalty.clients.stripe import StripeError
from loyalty.services import BackfillReport, revoke_duplicate_loyalty_codes
from loyalty.services.backfill import DuplicateGroup


class Command(BaseCommand):
    help = "Deactivate duplicate loyalty anniversary codes at Stripe (keeps the earliest per customer and year)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = bool(options["dry_run"])
        self.stdout.write("Listing active loyalty codes at Stripe ...")
        try:
            report = revoke_duplicate_loyalty_codes(
                actor=SystemActor("command:revoke_duplicate_loyalty_codes"), dry_run=dry_run, on_groups=self._progress
            )
        except StripeError as exc:
            raise CommandError(f"Stripe could not be read: {exc.describe()}") from exc
        self._summary(report, dry_run)
        if report.errors:
            raise CommandError(f"{len(report.errors)} group(s) failed; run the command again to retry them.")

    def _progress(self, groups: list[DuplicateGroup]) -> Iterable[DuplicateGroup]:
        return tqdm(groups, desc="customers", unit="group", file=self.stdout, ascii=True, mininterval=0.2)

    def _summary(self, report: BackfillReport, dry_run: bool) -> None:
        verb = "would deactivate" if dry_run else "deactivated"
        rows = [
            ("active loyalty codes scanned", report.codes_scanned),
            ("customers with duplicates", report.customers_with_duplicates),
            ("duplicate groups (customer, year)", report.groups),
            ("codes kept", report.codes_kept),
            (f"codes {verb}", report.codes_deactivated),
            ("rows revoked", report.rows_revoked),
            ("kept codes recorded as the live row", report.rows_recorded),
            ("errors", len(report.errors)),
        ]
        width = max(len(label) for label, _ in rows)
        self.stdout.write("")
        self.stdout.write(("DRY RUN: nothing was changed\n" if dry_run else "") + f"{'what':<{width}}  count")
        self.stdout.write(f"{'-' * width}  -----")
        for label, count in rows:
            self.stdout.write(f"{label:<{width}}  {count:>5}")
        for error in report.errors:
            self.stderr.write(f"error: {error}")
