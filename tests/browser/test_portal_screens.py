"""Every page of the affiliate portal as an affiliate (or a stray visitor) sees it in Chromium, at a
phone's width (390 px) and a laptop's (1366 px), with DEBUG on (the portal's error pages must be the
friendly ones even then).

Pages: the sign-in, the dashboard, a rejected and a paid payout, a pending commission, and the
error pages: another affiliate's payout (404), a path that matches no page (404), and a staff user
on the dashboard. Per page and width: a full-page screenshot under artifacts/browser/portal-screens/,
the checks of tests/browser/screen_checks.py (the expected HTTP status, not a DEBUG page, no sideways
overflow of the page, amounts shown as money), none of the technical pages' words, and axe-core's
serious or critical violations (none allowed; on the dashboard with the chart's table open). The
test collects every problem before it fails, so one run lists them all.
"""

import importlib
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.utils import timezone

from affiliates.models import Commission
from payouts.models import Payout
from payouts.services import approve_payout, record_wise_state, reject_payout, request_payout
from tests.browser.conftest import record, session_login
from tests.browser.screen_checks import accessibility_problems, screen_problems
from tests.factories.accounts import SuperAdminFactory, UserFactory
from tests.factories.affiliates import AffiliateFactory, CommissionFactory, TierEventFactory
from tests.factories.payouts import earned_commission

pytestmark = pytest.mark.django_db(transaction=True)
default_tiers_migration = importlib.import_module("affiliates.migrations.0003_default_tiers")
WIDTHS = {390: 844, 1366: 768}  # width -> height: a phone, a laptop
TECHNICAL = ("Technical 404", "Traceback", "URLconf", "Django tried these URL patterns", "DEBUG = True")
REJECTION = "The invoice behind this request was refunded"


@dataclass(frozen=True)
class Screen:
    name: str  # also the screenshot's file name
    path: str
    who: str  # "affiliate", "staff" or "anonymous"
    status: int = 200
    heading: str = ""  # the friendly error page's heading


def fill_the_portal() -> dict[str, int]:
    """eva, an affiliate with a bit of everything (commissions in three currencies, one with the
    3-decimal KWD, a disputed one, a refunded one, a long invoice id; payouts in review, rejected and
    paid), and bo, whose payout eva must not see."""
    default_tiers_migration.create_default_tiers(apps, None)
    eva = AffiliateFactory(user__username="eva", commission_rate=20)
    now = timezone.now()
    for days, amount, status in ((2, "1234.50", "approved"), (9, "150.00", "approved"), (20, "310.25", "pending")):
        commission = (
            earned_commission(eva, Decimal(amount), currency="USD")
            if status == "approved"
            else CommissionFactory(affiliate=eva, amount=Decimal(amount))
        )
        Commission.objects.filter(pk=commission.pk).update(created_at=now - timedelta(days=days))
    pending = CommissionFactory(
        affiliate=eva, amount=Decimal("88.80"), stripe_invoice_id="in_1QxLongInvoiceIdentifierThatDoesNotWrap2024"
    )
    disputed = CommissionFactory(affiliate=eva, amount=Decimal("45.00"))
    Commission.objects.filter(pk=disputed.pk).update(disputed=True)
    CommissionFactory(affiliate=eva, amount=Decimal("500.00"), status="reversed")
    earned_commission(eva, Decimal("40.00"), currency="EUR")
    earned_commission(eva, Decimal("1.250"), currency="KWD")
    TierEventFactory(affiliate=eva, from_rate=25, to_rate=20, tier_name="Bronze", cause="window moved")

    kerem = SuperAdminFactory(username="kerem")
    request_payout(affiliate=eva, amount=Decimal("100.00"), currency="USD", actor=eva.user)
    rejected = request_payout(affiliate=eva, amount=Decimal("250.00"), currency="USD", actor=eva.user)
    reject_payout(payout_id=rejected.pk, actor=kerem, reason=REJECTION)
    paid = request_payout(affiliate=eva, amount=Decimal("1000.00"), currency="USD", actor=eva.user)
    approve_payout(payout_id=paid.pk, actor=kerem)  # sent to the Wise stand-in on commit (Celery eager)
    paid.refresh_from_db()
    assert paid.status == "processing", paid.status
    # what Wise's signed webhook hands over once the money went out
    record_wise_state(transfer_id=paid.wise_transfer_id, state="outgoing_payment_sent", occurred_at=timezone.now())
    assert Payout.objects.get(pk=paid.pk).status == "paid"

    bo = AffiliateFactory(user__username="bo")
    bos = Payout.objects.create(affiliate=bo, amount=Decimal("77.77"), currency="USD")
    UserFactory(username="olga", is_staff=True)
    return {"rejected": rejected.pk, "paid": paid.pk, "pending": pending.pk, "bos": bos.pk}


def screens(ids: dict[str, int]) -> list[Screen]:
    return [
        Screen("login", "/affiliate/login/", "anonymous"),
        Screen("dashboard", "/affiliate/", "affiliate"),
        Screen("payout-rejected", f"/affiliate/payouts/{ids['rejected']}/", "affiliate"),
        Screen("payout-paid", f"/affiliate/payouts/{ids['paid']}/", "affiliate"),
        Screen("commission-pending", f"/affiliate/commissions/{ids['pending']}/", "affiliate"),
        Screen(
            "error-other-affiliates-payout", f"/affiliate/payouts/{ids['bos']}/", "affiliate", 404, "Page not found"
        ),
        Screen("error-no-such-page", "/affiliate/no-such-page/", "affiliate", 404, "Page not found"),
        Screen("error-staff-on-dashboard", "/affiliate/", "staff", 404, "No affiliate account"),
    ]


def test_every_portal_page_fits_a_phone_and_a_laptop_and_shows_money_as_money(
    new_context, live_server, wise, settings, artifacts_dir: Path
):
    started = time.monotonic()
    ids = fill_the_portal()
    settings.DEBUG = True  # the live server reads the same settings: the error pages must still be friendly
    folder = artifacts_dir / "portal-screens"
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    users = {"affiliate": "eva", "staff": "olga"}

    problems: dict[str, list[str]] = {}
    checked = 0
    for width, height in WIDTHS.items():
        pages = {}
        for who in ("anonymous", "affiliate", "staff"):
            context = new_context(viewport={"width": width, "height": height})
            if who in users:
                session_login(context, live_server.url, User.objects.get(username=users[who]))
            pages[who] = context.new_page()
        for screen in screens(ids):
            page = pages[screen.who]
            response = page.goto(screen.path)
            if screen.name == "dashboard":
                page.locator("#chart details summary").click()  # the table alternative, for the checks and axe
            shot = folder / f"{screen.name}-{width}.png"
            page.screenshot(path=str(shot), full_page=True, animations="disabled")
            found = [p for p in screen_problems(page, response, content=("main",)) if p != f"HTTP {screen.status}"]
            if response is None or response.status != screen.status:
                found.append(f"expected HTTP {screen.status}")
            text = page.locator("body").inner_text()
            found.extend(f"technical page word {word!r}" for word in TECHNICAL if word in text)
            if screen.heading and page.locator("#error h2").text_content() != screen.heading:
                found.append(f"not the friendly page {screen.heading!r}: {text[:120]!r}")
            found.extend(accessibility_problems(page))
            if screen.name == "dashboard":
                found.extend(dashboard_problems(page, width))
            checked += 1
            if found:
                problems[f"{screen.name} @ {width} px ({shot.relative_to(artifacts_dir.parent.parent)})"] = found

    record(
        f"portal screens: {checked} page views ({len(screens(ids))} pages x {len(WIDTHS)} widths), "
        f"{len(problems)} with problems, screenshots in {folder} ({time.monotonic() - started:.1f}s)"
    )
    assert not problems, "\n".join(f"{where}:\n  " + "\n  ".join(found) for where, found in sorted(problems.items()))


def dashboard_problems(page, width: int) -> list[str]:
    """What the dashboard must show beyond the generic checks, read off the rendered page."""
    problems = []
    text = page.locator("main").inner_text()
    for expected in (
        "Payable from",
        "Rejected on",
        REJECTION,
        "Paid on",
        "Lifetime earnings",
        "KWD 1.250",
        "€40.00",
        "$1,234.50",
    ):
        if expected not in text:
            problems.append(f"missing {expected!r}")
    axis = page.locator("#chart .y-axis .tick").all_inner_texts()
    if axis[:1] != ["$0.00"] or len(axis) < 3:
        problems.append(f"value axis labels {axis}")
    if page.locator("#chart .x-axis span").count() != page.locator("#chart-table tbody tr").count():
        problems.append("not one time-axis label per week of the table")
    if width < 600:
        # the commissions table is wider than a phone: it scrolls inside its own box, the page does not
        box = page.locator("#commissions .table-scroll")
        if not box.evaluate("(e) => e.scrollWidth > e.clientWidth"):
            problems.append("the commissions table does not scroll in its own box at this width")
    return problems
