"""The admin index's one summary of what needs attention (config.selectors.attention_summary, drawn
by templates/admin/index.html): pending payout reviews with their amounts per currency as money,
dead sync jobs, unacknowledged alerts, each a link to the filtered list it counts."""

import html
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from audit.models import BeaconAlert, BeaconCount
from audit.templatetags.audit_dashboard import ALERT_EXPLANATION
from config.selectors import attention_summary
from payouts.models import PayoutStatus
from pos_sync.models import SyncJobStatus
from tests.factories.accounts import SuperAdminFactory, UserFactory
from tests.factories.payouts import PayoutFactory
from tests.factories.pos_sync import SyncJobFactory

pytestmark = pytest.mark.django_db

RAW_DECIMAL = re.compile(r"\d\.\d{4,}")  # '368.840000000000': a Decimal shown with str()


@pytest.fixture
def super_admin() -> Client:
    client = Client()
    client.force_login(SuperAdminFactory())
    return client


@pytest.fixture
def attention():
    """4 payouts waiting for review in three currencies (and one already paid), 2 dead sync jobs
    (and one sent), 2 open alerts (and one acknowledged)."""
    waiting = [
        PayoutFactory(currency="USD", amount=Decimal("1000.00")),
        PayoutFactory(currency="USD", amount=Decimal("200.00")),
        PayoutFactory(currency="EUR", amount=Decimal("40.00")),
        PayoutFactory(currency="JPY", amount=Decimal("1235")),
    ]
    PayoutFactory(currency="USD", amount=Decimal("999.00"), status=PayoutStatus.PAID)
    dead = [SyncJobFactory(status=SyncJobStatus.DEAD), SyncJobFactory(status=SyncJobStatus.DEAD)]
    SyncJobFactory(status=SyncJobStatus.SUCCESS)
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    alerts = [
        BeaconAlert.objects.create(kind="payout_race_lost", hour=hour, count=12, raised_at=timezone.now()),
        BeaconAlert.objects.create(
            kind="ledger_check_failed", hour=hour, count=1, raised_at=timezone.now(), severity="critical"
        ),
    ]
    BeaconAlert.objects.create(
        kind="payout_transition_refused",
        hour=hour - timedelta(hours=3),
        count=30,
        raised_at=timezone.now(),
        acknowledged_at=timezone.now(),
    )
    return {"waiting": waiting, "dead": dead, "alerts": alerts}


def summary_html(page: str) -> str:
    start = page.index('<div class="module" id="attention">')
    return page[start : page.index('<div id="content-main">', start)]


def row(summary: str, row_id: str) -> str:
    match = re.search(rf'<tr id="{row_id}">(.*?)</tr>', summary, re.S)
    assert match, row_id
    return match.group(1)


def link(row_html: str) -> str:
    match = re.search(r'<a href="([^"]+)">', row_html)
    assert match
    return html.unescape(match.group(1))


def test_the_selector_counts_and_sums_per_currency(attention):
    summary = attention_summary()

    assert summary.pending_review.count == 4
    assert summary.pending_review.totals == {
        "USD": Decimal("1200.00"),
        "EUR": Decimal("40.00"),
        "JPY": Decimal("1235"),
    }
    assert summary.dead_sync_jobs == 2
    assert summary.open_alert_count == 2
    assert {a.pk for a in summary.latest_alerts} == {a.pk for a in attention["alerts"]}


def test_the_index_shows_one_summary_with_amounts_as_money(super_admin, attention):
    page = super_admin.get("/admin/").content.decode()

    summary = summary_html(page)
    assert page.count('id="attention"') == 1
    assert 'id="race-safety"' not in page and 'id="payouts-widget"' not in page  # the two old widgets
    payouts = row(summary, "attention-payouts")
    assert "4 payouts: €40.00 · ¥1,235 · $1,200.00" in payouts  # per currency, never added across
    assert ">2<" in row(summary, "attention-dead-jobs")
    assert ">2<" in row(summary, "attention-alerts")
    assert not RAW_DECIMAL.search(page)
    assert "1200.00" not in page and "1235.00" not in page


def test_each_figure_links_to_the_list_it_counts(super_admin, attention):
    summary = summary_html(super_admin.get("/admin/").content.decode())

    payouts = super_admin.get(link(row(summary, "attention-payouts")))
    dead = super_admin.get(link(row(summary, "attention-dead-jobs")))
    alerts = super_admin.get(link(row(summary, "attention-alerts")))

    assert {p.pk for p in payouts.context["cl"].result_list} == {p.pk for p in attention["waiting"]}
    assert {j.pk for j in dead.context["cl"].result_list} == {j.pk for j in attention["dead"]}
    assert {a.pk for a in alerts.context["cl"].result_list} == {a.pk for a in attention["alerts"]}


def test_open_alerts_are_listed_in_plain_words_with_what_an_alert_is(super_admin, attention):
    summary = summary_html(super_admin.get("/admin/").content.decode())

    assert "12 &times; Payout race lost in the hour from" in summary
    assert "Critical: 1 &times; Ledger check failed" in summary
    assert "Payout transition refused" not in summary  # acknowledged
    assert escape(ALERT_EXPLANATION) in summary
    kind_link = re.search(r'<a href="([^"]+)">Critical: 1', summary)
    assert kind_link
    listed = super_admin.get(html.unescape(kind_link.group(1))).context["cl"].result_list
    assert [a.pk for a in listed] == [attention["alerts"][1].pk]


def test_plain_labels_and_no_status_codes(super_admin, attention):
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    BeaconCount.objects.create(kind="payout_race_lost", hour=hour, count=7)
    BeaconCount.objects.create(kind="payout_transition_refused", hour=hour, count=3)

    page = super_admin.get("/admin/").content.decode()

    summary = summary_html(page)
    for developer_words in ("(409)", "(422)", "(403)", "ALERT:", "Pos_Sync", "Shared machinery"):
        assert developer_words not in page
    assert re.search(r'id="attention-lost-races">7<', summary)
    assert re.search(r'id="attention-refused">3<', summary)
    assert "Restaurant orders (Square)" in page and "Ledger (the books)" in page


def test_nothing_waiting_says_none(super_admin):
    summary = summary_html(super_admin.get("/admin/").content.decode())

    for row_id in ("attention-payouts", "attention-dead-jobs", "attention-alerts"):
        assert ">none<" in row(summary, row_id)


def test_staff_who_are_not_super_admins_get_no_summary(attention):
    client = Client()
    client.force_login(UserFactory(is_staff=True))

    page = client.get("/admin/").content.decode()

    assert 'id="attention"' not in page and "€40.00" not in page
