"""Backfill for the duplicate "Promoted to ..." events of the seed incident.

    python manage.py dedupe_tier_events [--dry-run] [--window-seconds 60]

Finds active TierEvents with the same affiliate, from_rate and to_rate within a minute of the
earliest one, keeps that earliest one and marks the rest `superseded` (never deletes, one audit
row each). Safe to run twice: the second run finds nothing, because superseded rows are ignored.
"""

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from affiliates.services import DuplicateRun, find_duplicate_tier_events, supersede_tier_events
from core.actors import SystemActor

MAX_WINDOW_SECONDS = 3600


class Command(BaseCommand):
    help = "Mark duplicate TierEvents (same affiliate and change within a minute) superseded, keeping the earliest."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; write nothing.")
        parser.add_argument(
            "--window-seconds", type=int, default=60, help="Copies this close to the kept event are duplicates."
        )

    def handle(self, *args: Any, dry_run: bool, window_seconds: int, **options: Any) -> None:
        if not 1 <= window_seconds <= MAX_WINDOW_SECONDS:
            raise CommandError(f"--window-seconds must be between 1 and {MAX_WINDOW_SECONDS}, got {window_seconds}.")
        runs = find_duplicate_tier_events(window=timedelta(seconds=window_seconds))
        actor = SystemActor("command:dedupe_tier_events")
        changed = []
        for run in tqdm(runs, desc="duplicate runs", unit="run", file=self.stdout, disable=not runs):
            if dry_run:
                changed.append(len(run.duplicate_ids))
                continue
            reason = f"duplicate of tier event #{run.kept_id}"
            changed.append(supersede_tier_events(event_ids=run.duplicate_ids, actor=actor, reason=reason))
        self._report(runs, changed, dry_run)

    def _report(self, runs: list[DuplicateRun], changed: list[int], dry_run: bool) -> None:
        verb = "would supersede" if dry_run else "superseded"
        if runs:
            self.stdout.write(f"{'affiliate':>10}  {'change':<11}  {'kept':>8}  {verb}")
        for run, count in zip(runs, changed, strict=True):
            ids = ", ".join(f"#{event_id}" for event_id in run.duplicate_ids)
            change = f"{run.from_rate}% -> {run.to_rate}%"
            self.stdout.write(f"{run.affiliate_id:>10}  {change:<11}  #{run.kept_id:>7}  {count}: {ids}")
        affiliates = len({run.affiliate_id for run in runs})
        summary = f"{sum(changed)} duplicate tier event(s) {verb} across {affiliates} affiliate(s)."
        self.stdout.write(self.style.SUCCESS(summary + (" Dry run: nothing written." if dry_run else "")))
