"""python manage.py reconcile_pos --since 7d [--refund-duplicates] [--dry-run] [--connection ID ...]

Lists every connection's orders at its POS, reports each order recorded more than once (with the
payments of the extra copies) and, with --refund-duplicates, refunds those payments. Refunds are
idempotent per payment: running it again refunds nothing more. Exits non-zero if anything failed.
"""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from core.actors import SystemActor
from pos_sync import selectors, services
from pos_sync.providers.base import from_minor_units
from pos_sync.services.reconcile import ALREADY_REFUNDED, FAILED, REFUNDED, WOULD_REFUND, ConnectionReconcile

ACTOR = SystemActor("command:reconcile_pos")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
SUMMARY_COLUMNS = [
    ("restaurant", 24),
    ("orders", 7),
    ("dup. orders", 11),
    ("extra copies", 12),
    ("extra payments", 14),
    ("refunded", 8),
    ("already", 7),
    ("would", 5),
    ("failed", 6),
]


def parse_since(value: str, *, now: datetime) -> datetime:
    """'7d', '12h', '30m', '2w', or an ISO date / datetime."""
    match = re.fullmatch(r"(\d+)([mhdw])", value.strip())
    if match:
        return now - timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
    moment = parse_datetime(value) or _date_start(value)
    if moment is None:
        raise CommandError(f"--since {value!r}: use e.g. 7d, 12h, 30m, 2w or an ISO date such as 2026-11-01.")
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


def _date_start(value: str) -> datetime | None:
    day = parse_date(value)
    return datetime(day.year, day.month, day.day) if day else None


class _Stream:
    """tqdm writes carriage returns; Django's OutputWrapper would add a newline to each write."""

    def __init__(self, out: Any) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text, ending="")

    def flush(self) -> None:
        self.out.flush()


class Command(BaseCommand):
    help = "Find orders recorded more than once at the POS and (optionally) refund the extra payments."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", required=True, help="How far back to look: 7d, 12h, 30m, 2w or an ISO date.")
        parser.add_argument("--refund-duplicates", action="store_true", help="Refund the extra copies' payments.")
        parser.add_argument("--dry-run", action="store_true", help="Say what would be refunded; change nothing.")
        parser.add_argument("--connection", type=int, action="append", help="Only this connection id (repeatable).")

    def handle(self, *args: object, **options: Any) -> None:
        since = parse_since(options["since"], now=timezone.now())
        connections = list(selectors.reconcilable_connections(connection_ids=options["connection"]))
        if options["connection"] and len(connections) != len(set(options["connection"])):
            raise CommandError(f"Unknown or inactive connection among {options['connection']}.")
        mode = "dry run" if options["dry_run"] else ("refunding" if options["refund_duplicates"] else "report only")
        self.stdout.write(
            f"Reconciling {len(connections)} connection(s), orders since {since:%Y-%m-%d %H:%M} UTC ({mode})."
        )
        reports = [self._reconcile(connection, since, options) for connection in connections]
        for report in reports:
            self._details(report)
        self._summary(reports)
        failures = [r for r in reports if r.error] + [d for r in reports for d in r.duplicates if d.action == FAILED]
        if failures:
            raise CommandError(f"{len(failures)} connection(s) or refund(s) failed: see above.")

    def _reconcile(self, connection: Any, since: datetime, options: dict[str, Any]) -> ConnectionReconcile:
        with tqdm(desc=connection.restaurant_name[:24], unit=" orders", file=_Stream(self.stdout), leave=True) as bar:
            return services.reconcile_connection(
                connection=connection,
                since=since,
                actor=ACTOR,
                refund=options["refund_duplicates"],
                dry_run=options["dry_run"],
                on_page=bar.update,
            )

    def _details(self, report: ConnectionReconcile) -> None:
        if report.error:
            self.stderr.write(f"{report.restaurant}: {report.error}")
        if report.skipped:
            self.stderr.write(self.style.WARNING(f"{report.restaurant}: skipped. {report.skipped}"))
        for d in report.duplicates:
            amount = f"{from_minor_units(d.payment.amount, d.payment.currency)} {d.payment.currency}"
            line = (
                f"{report.restaurant}: order {d.reference_id} copy {d.extra_order_id} (kept {d.kept_order_id}) "
                f"payment {d.payment.payment_id} {amount}: {d.action}"
            )
            line += f" as {d.refund_id}" if d.refund_id else ""
            line += f" ({d.error})" if d.error else ""
            self.stdout.write(line)

    def _summary(self, reports: list[ConnectionReconcile]) -> None:
        self.stdout.write("")
        self.stdout.write(" | ".join(name.ljust(width) for name, width in SUMMARY_COLUMNS).rstrip())
        self.stdout.write("-+-".join("-" * width for _, width in SUMMARY_COLUMNS))
        rows = [self._row(r) for r in reports]
        totals = ["TOTAL", *(sum(int(row[i]) for row in rows) for i in range(1, len(SUMMARY_COLUMNS)))]
        for row in [*rows, totals]:
            cells = (str(v).ljust(width) for v, (_, width) in zip(row, SUMMARY_COLUMNS, strict=True))
            self.stdout.write(" | ".join(cells).rstrip())

    def _row(self, r: ConnectionReconcile) -> list[Any]:
        name = r.restaurant[:22] + (" !" if r.error else " -" if r.skipped else "")
        counts = [r.count(action) for action in (REFUNDED, ALREADY_REFUNDED, WOULD_REFUND, FAILED)]
        return [name, r.orders_scanned, r.duplicate_groups, r.extra_orders, len(r.duplicates), *counts]
