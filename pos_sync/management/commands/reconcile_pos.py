"""python manage.py reconcile_pos --since 7d [--connection ID ...]
   python manage.py reconcile_pos --since 7d --refund-duplicates --expect N [--connection ID ...]

Reads every connection's orders at its POS and sorts them (pos_sync.providers.ownership): ours,
duplicates of ours (extra copies of one of our orders), not ours. Without --refund-duplicates it is
a dry run: it lists the duplicates' payments it would refund and the orders that look like ours but
are not provably ours, then a table per connection. --refund-duplicates refunds those payments, and
only if their number is exactly --expect N (the number the dry run showed); otherwise it refunds
nothing and exits non-zero. Refunds are idempotent per payment: running it again refunds nothing
more. Bad input, an unreadable POS or a failed refund exit non-zero.
"""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from core.actors import SystemActor
from core.errors import DomainError
from pos_sync import selectors, services
from pos_sync.providers.base import from_minor_units
from pos_sync.services.reconcile import ALREADY_REFUNDED, FAILED, REFUNDED, ConnectionReconcile

ACTOR = SystemActor("command:reconcile_pos")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
SUMMARY_COLUMNS = [
    ("restaurant", 24),
    ("orders", 7),
    ("ours", 5),
    ("dup. of ours", 12),
    ("not ours", 8),
    ("to refund", 9),
    ("refunded", 8),
    ("already", 7),
    ("failed", 6),
]


def parse_since(value: str, *, now: datetime) -> datetime:
    """'7d', '12h', '30m', '2w', or an ISO date / datetime."""
    match = re.fullmatch(r"(\d+)([mhdw])", value.strip())
    if match:
        return now - timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = parse_datetime(value) or _date_start(value)
    except ValueError:  # well formed but impossible, e.g. 2026-13-45
        moment = None
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
    help = (
        "Sort each connection's POS orders into ours / duplicates of ours / not ours (a dry run), "
        "and with --refund-duplicates --expect N refund the duplicates' payments."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", required=True, help="How far back to look: 7d, 12h, 30m, 2w or an ISO date.")
        parser.add_argument(
            "--refund-duplicates", action="store_true", help="Refund the payments of the duplicates of our orders."
        )
        parser.add_argument(
            "--expect", type=int, metavar="N", help="With --refund-duplicates: how many refunds the dry run listed."
        )
        parser.add_argument("--dry-run", action="store_true", help="The default: say what would be refunded.")
        parser.add_argument("--connection", type=int, action="append", help="Only this connection id (repeatable).")

    def handle(self, *args: object, **options: Any) -> None:
        refund, expect = options["refund_duplicates"], options["expect"]
        _check_options(refund=refund, expect=expect, dry_run=options["dry_run"])
        since = parse_since(options["since"], now=timezone.now())
        connections = list(selectors.reconcilable_connections(connection_ids=options["connection"]))
        if options["connection"] and len(connections) != len(set(options["connection"])):
            raise CommandError(f"Unknown or inactive connection among {options['connection']}.")
        mode = f"refunding, {expect} expected" if refund else "dry run: nothing is refunded"
        self.stdout.write(
            f"Reconciling {len(connections)} connection(s), orders since {since:%Y-%m-%d %H:%M} UTC ({mode})."
        )
        reports = [self._reconcile(connection, since) for connection in connections]
        refused = self._refund(reports, expect) if refund else None
        for report in reports:
            self._details(report)
        self._summary(reports)
        if refused is not None:
            raise CommandError(refused)
        failures = [r for r in reports if r.error] + [d for r in reports for d in r.duplicates if d.action == FAILED]
        if failures:
            raise CommandError(f"{len(failures)} connection(s) or refund(s) failed: see above.")

    def _reconcile(self, connection: Any, since: datetime) -> ConnectionReconcile:
        with tqdm(desc=connection.restaurant_name[:24], unit=" orders", file=_Stream(self.stdout), leave=True) as bar:
            return services.reconcile_connection(connection=connection, since=since, on_page=bar.update)

    def _refund(self, reports: list[ConnectionReconcile], expect: int) -> str | None:
        """Refund as planned; a refusal (count mismatch, unreadable POS) is returned, not raised, so
        that the listing and the table are printed before the command fails."""
        try:
            services.refund_duplicates(reports=reports, expected=expect, actor=ACTOR)
        except DomainError as refusal:
            return f"Refused ({refusal.code}): {refusal.message} Run without --refund-duplicates to see the plan."
        return None

    def _details(self, report: ConnectionReconcile) -> None:
        if report.error:
            self.stderr.write(f"{report.restaurant}: {report.error}")
        if report.skipped:
            self.stderr.write(self.style.WARNING(f"{report.restaurant}: skipped. {report.skipped}"))
        for a in report.look_alikes:
            self.stdout.write(
                f"{report.restaurant}: not ours: POS order {a.provider_order_id} reference {a.reference_id!r} "
                f"({a.reason}): reported, never refunded"
            )
        for d in report.duplicates:
            amount = f"{from_minor_units(d.payment.amount, d.payment.currency)} {d.payment.currency}"
            line = (
                f"{report.restaurant}: order {d.order_id} copy {d.extra_order_id} (kept {d.kept_order_id}) "
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
        counts = [r.count(action) for action in (REFUNDED, ALREADY_REFUNDED, FAILED)]
        return [name, r.orders_scanned, r.ours, r.duplicate_orders, r.not_ours, r.planned, *counts]


def _check_options(*, refund: bool, expect: int | None, dry_run: bool) -> None:
    """Bad combinations are refused before anything is read."""
    if refund and dry_run:
        raise CommandError("--dry-run and --refund-duplicates exclude each other (a run without either is a dry run).")
    if refund and expect is None:
        raise CommandError(
            "--refund-duplicates needs --expect N, the number of refunds a dry run listed: run without "
            "--refund-duplicates first."
        )
    if expect is not None and not refund:
        raise CommandError("--expect N goes with --refund-duplicates.")
    if expect is not None and expect < 0:
        raise CommandError(f"--expect {expect}: the number of refunds cannot be negative.")
