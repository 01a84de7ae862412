"""Every admin screen of the product, as a super-admin sees it in Chromium at a phone's width (390 px)
and a laptop's (1366 px), on data that fills every screen.

The data is the demo's own seed (`manage.py seed_demo`, against the in-process Wise, Square and Stripe
stand-ins, Celery eager), plus what only time or providers bring: a Stripe invoice and its partial
refund delivered as signed webhooks, one payout approved (and sent to Wise), one rejected, and the
beacon alerts raised. Every admin-registered model of the product's own apps must then have a row.

The screens: the index, the review page of a requested payout, the audit trail, the ledger's trial
balance and the payee's statement, and for every admin-registered model of the product's own apps
(found in the admin's registry, so a new model is swept without editing this file) its list and the
page of its latest row.

One sign-in (password and TOTP code), reused by one browser context per width. Per screen and width:
a full-page screenshot under artifacts/browser/admin-screens/, and the checks of
tests/browser/screen_checks.py (HTTP 200, not a DEBUG page, no sideways overflow of the page, amounts
shown as money). axe-core on the index and the review page at both widths: no serious or critical
violation. The test collects every problem before it fails, so one run lists them all.
"""

import importlib
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db.models import Model
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry
from audit.services import raise_beacon_alerts
from ledger.models import Account, AccountKind
from payouts.models import Payout, PayoutStatus
from payouts.services import approve_payout, reject_payout
from pos_sync.services import drain_due_jobs
from tests.affiliates.events import charge_refunded, invoice_paid
from tests.browser.conftest import admin_login, record
from tests.browser.screen_checks import accessibility_problems, screen_problems
from tests.stripe_signing import post_stripe_event

pytestmark = pytest.mark.django_db(transaction=True)
WIDTHS = (390, 1366)
HEIGHT = 900
REVIEWER, PASSWORD = "kerem", "demo-pass-kerem"  # the demo's super-admin (seed_demo gives the TOTP device)
SECOND_REVIEWER = "ana"


@dataclass(frozen=True)
class Screen:
    name: str  # also the screenshot's file name
    path: str
    axe: bool = False  # also checked by axe-core


def product_models() -> list[type[Model]]:
    """The admin's models from the product's own apps (in this repository), not Django's or a library's."""
    root = Path(settings.BASE_DIR).resolve()

    def ours(model: type[Model]) -> bool:
        path = Path(apps.get_app_config(model._meta.app_label).path).resolve()
        return path.is_relative_to(root) and "site-packages" not in path.parts  # a virtualenv may sit in the root

    return sorted(filter(ours, admin.site._registry), key=lambda m: m._meta.label)


def fill_every_screen() -> Payout:
    """The demo's seed plus what providers and reviewers add later; returns a payout awaiting review."""
    # The tiers come from a data migration (affiliates 0003). A transactional test that ran earlier
    # on this worker flushed every table, those rows with them: put them back as `migrate` would.
    importlib.import_module("affiliates.migrations.0003_default_tiers").create_default_tiers(apps, None)
    call_command("seed_demo", stdout=io.StringIO())
    kerem, ana = (User.objects.get(username=name) for name in (REVIEWER, SECOND_REVIEWER))

    # Stripe: one more paid invoice of gold_gus's restaurant, then a partial refund of it
    client = Client()
    for event in (
        invoice_paid("evt_sweep_paid", invoice_id="in_sweep", customer="cus_demo_gold_gus", amount_paid=123_456),
        charge_refunded("evt_sweep_refund", invoice_id="in_sweep", amount=123_456, amount_refunded=20_000),
    ):
        response = post_stripe_event(client, event)
        assert response.status_code == 200, response.content

    # the review queue: one payout sent to Wise, one rejected with a reason, the others left to review
    requested = list(Payout.objects.filter(status=PayoutStatus.REQUESTED).order_by("amount", "pk"))
    assert len(requested) >= 3, requested
    approve_payout(payout_id=requested[0].pk, actor=kerem, reason="matches the statement")
    reject_payout(payout_id=requested[1].pk, actor=ana, reason="invoice in_demo_gold_gus_4 is disputed")
    # POS: beat's drain pushes the queued orders to Square; the restaurant without a token dead-letters
    drain_due_jobs()
    raise_beacon_alerts()
    return requested[-1]


def screens(review: Payout) -> list[Screen]:
    """The index, the review page, the audit trail, the books' own pages, then each product model's
    list and the page of its latest row."""
    payable = Account.objects.get(
        kind=AccountKind.AFFILIATE_PAYABLE, owner_id=str(review.affiliate_id), currency=review.currency
    )
    listed = [
        Screen("index", reverse("admin:index"), axe=True),
        Screen("payout-review", reverse("admin:payouts_payout_change", args=[review.pk]), axe=True),
        Screen("audit-trail", reverse("admin:audit_auditentry_changelist")),
        Screen("ledger-trial-balance", reverse("admin:ledger_trial_balance")),
        Screen("ledger-statement", reverse("admin:ledger_account_statement", args=[payable.pk])),
    ]
    empty = []
    for model in product_models():
        info = (model._meta.app_label, model._meta.model_name)
        if model is not AuditEntry:  # the audit trail, listed above
            listed.append(Screen(f"{info[0]}-{info[1]}-list", reverse("admin:{}_{}_changelist".format(*info))))
        shown = model._default_manager.exclude(pk=review.pk) if model is Payout else model._default_manager
        last = shown.order_by("-pk").first()
        if last is None:
            empty.append(model._meta.label)
            continue
        listed.append(Screen(f"{info[0]}-{info[1]}-page", reverse("admin:{}_{}_change".format(*info), args=[last.pk])))
    assert not empty, f"no row to show on these screens: {empty}"
    return listed


@contextmanager
def _timed(spent: dict[str, float], step: str) -> Iterator[None]:
    began = time.monotonic()
    yield
    spent[step] += time.monotonic() - began


def test_every_admin_screen_fits_and_shows_money_as_money(
    new_context, live_server, wise, square, stripe, artifacts_dir: Path
):
    started = time.monotonic()
    review = fill_every_screen()
    pages = screens(review)
    seeded = time.monotonic() - started
    folder = artifacts_dir / "admin-screens"
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.*"):
        old.unlink()

    signed_in = admin_login(new_context(), REVIEWER, PASSWORD, reverse("admin:index")).context.storage_state()
    problems: dict[str, list[str]] = {}
    spent = dict.fromkeys(("open", "screenshot", "checks", "axe"), 0.0)
    for width in WIDTHS:
        page = new_context(viewport={"width": width, "height": HEIGHT}, storage_state=signed_in).new_page()
        for screen in pages:
            with _timed(spent, "open"):
                response = page.goto(screen.path)
            shot = folder / f"{screen.name}-{width}.jpg"
            with _timed(spent, "screenshot"):  # JPEG: half the time of a PNG of a long page
                page.screenshot(path=str(shot), full_page=True, quality=70, animations="disabled")
            with _timed(spent, "checks"):
                found = screen_problems(page, response)
            if not page.url.endswith(screen.path):
                found.append(f"landed on {page.url}")
            if screen.axe:
                with _timed(spent, "axe"):
                    found.extend(accessibility_problems(page))
            if found:
                # one line per distinct problem, with how often the page has it
                counted = {line: found.count(line) for line in found}
                problems[f"{screen.name} @ {width} px ({shot.relative_to(settings.BASE_DIR)})"] = [
                    line if times == 1 else f"{line} (x{times})" for line, times in counted.items()
                ]

    elapsed = time.monotonic() - started
    record(
        f"admin screens: {len(pages)} screens x {len(WIDTHS)} widths, {len(problems)} with problems, "
        f"screenshots in {folder} (data {seeded:.1f}s, "
        + ", ".join(f"{step} {seconds:.1f}s" for step, seconds in spent.items())
        + f", total {elapsed:.1f}s)"
    )
    assert not problems, "\n".join(
        f"{where}:\n  " + "\n  ".join(found) for where, found in sorted(problems.items())
    )
