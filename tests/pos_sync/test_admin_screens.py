"""The restaurant orders' admin screens as finance staff read them: a next attempt only for a job
that will be tried (again), order totals and prices as money, plain labels."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pos_sync.models import SyncJobStatus
from tests.factories.pos_sync import OrderFactory, SyncJobFactory

pytestmark = pytest.mark.django_db
SOON = timezone.now() + timedelta(days=3)
LATER = timezone.now() + timedelta(days=5)


@pytest.fixture
def admin(client: Client, superuser) -> Client:
    client.force_login(superuser)
    return client


def next_attempt_cells(page: str) -> list[str]:
    return [cell.strip() for cell in re.findall(r'<td class="field-next_attempt_shown[^"]*">(.*?)</td>', page, re.S)]


def test_only_jobs_that_will_be_tried_again_show_a_next_attempt_in_the_queue(admin):
    # given: every status, each with a next_attempt_at still in its column
    for status, when in [
        (SyncJobStatus.SUCCESS, SOON),
        (SyncJobStatus.DEAD, SOON),
        (SyncJobStatus.FAILED, LATER),
    ]:
        SyncJobFactory(status=status, next_attempt_at=when)

    # when
    page = admin.get(reverse("admin:pos_sync_syncjob_changelist")).content.decode()

    # then: one date, the failed job's; the sent and given-up jobs show none
    cells = next_attempt_cells(page)
    assert len(cells) == 3
    assert cells[0] != "-" and cells[1:] == ["-", "-"]  # newest first: the failed job, then dead and sent
    assert "Next attempt" in page


@pytest.mark.parametrize(
    ("status", "shown"),
    [(SyncJobStatus.SUCCESS, False), (SyncJobStatus.DEAD, False), (SyncJobStatus.FAILED, True)],
)
def test_a_jobs_page_shows_a_next_attempt_only_while_it_will_be_retried(admin, status, shown):
    job = SyncJobFactory(status=status, next_attempt_at=SOON)

    page = admin.get(reverse("admin:pos_sync_syncjob_change", args=[job.pk])).content.decode()

    assert ("Next attempt" in page) is shown
    assert ("field-next_attempt_at" in page) is shown


def test_the_orders_page_lists_its_jobs_with_a_next_attempt_only_for_the_live_one(admin):
    order = OrderFactory()
    SyncJobFactory(order=order, status=SyncJobStatus.SUCCESS, next_attempt_at=SOON, provider_order_id="SQ-1")
    SyncJobFactory(order=order, status=SyncJobStatus.FAILED, next_attempt_at=LATER)

    page = admin.get(reverse("admin:pos_sync_order_change", args=[order.pk])).content.decode()

    cells = [c for c in re.findall(r'<td class="field-next_attempt_shown">\s*<p>(.*?)</p>', page, re.S)]
    assert len(cells) == 2 and cells.count("-") == 1


def test_order_totals_and_prices_are_money(admin):
    OrderFactory(
        line_items=[
            {"name": "Ramen", "quantity": 3, "unit_price": "1200"},
            {"name": "Tea", "quantity": 1, "unit_price": "35"},
        ],
        total=Decimal("3635"),
        currency="JPY",
    )
    usd = OrderFactory(total=Decimal("1234.5"))

    listed = admin.get(reverse("admin:pos_sync_order_changelist")).content.decode()
    page = admin.get(reverse("admin:pos_sync_order_change", args=[usd.pk])).content.decode()

    assert '<span class="money">¥3,635</span>' in listed and '<span class="money">$1,234.50</span>' in listed
    assert "$1,234.50" in page
    assert "2 x Pasta at $12.50" in page and "1 x Water at $3.00" in page
    assert "unit_price" not in page and "1234.50<" not in page


def test_status_names_and_the_app_name_are_plain(admin):
    SyncJobFactory(status=SyncJobStatus.DEAD)

    queue = admin.get(reverse("admin:pos_sync_syncjob_changelist")).content.decode()
    index = admin.get("/admin/").content.decode()

    assert "Gave up (needs a requeue)" in queue and "Waiting to be sent" in queue
    assert "Restaurant orders (Square)" in index and "Pos_Sync" not in index and "Pos_sync" not in index
