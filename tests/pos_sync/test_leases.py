"""The drain's claim lease: derived from the timeouts and the search's page bound, refused when
configured shorter, renewed while a push reads Square's orders, and checked before anything is
created (against the Square stand-in, which records every request)."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from audit.models import BeaconCount
from core.claims import renew
from core.models import Claim
from pos_sync.keys import square_order_key
from pos_sync.leases import check_claim_lease, claim_lease, push_call_chain
from pos_sync.models import SyncJob, SyncJobStatus
from pos_sync.services import drain
from pos_sync.services.drain import LEASE_LOST, push_due_jobs, push_job, take_due_jobs
from tests.concurrency import race
from tests.factories.pos_sync import SyncJobFactory

ORDERS, PAYMENTS, SEARCH = r"^/v2/orders$", r"^/v2/payments$", r"^/v2/orders/search$"
PAGE = 500  # pos_sync.clients.square.SEARCH_PAGE_SIZE
ROOT = Path(__file__).resolve().parents[2]


# --- derived, and refused when configured shorter -----------------------------------------------


@pytest.mark.parametrize(
    ("timeout", "pages", "expected"),
    [
        (10.0, 10, timedelta(minutes=9)),  # (10 pages + 2 creates) x 4 phases x 10 s + 60 s
        (10.0, 20, timedelta(minutes=15, seconds=40)),
        (30.0, 10, timedelta(minutes=25)),
        (5.0, 1, timedelta(minutes=2)),  # the chaos stack's
    ],
)
def test_the_lease_is_derived_from_the_timeout_and_the_search_page_bound(settings, timeout, pages, expected):
    settings.SQUARE_TIMEOUT_SECONDS, settings.POS_SYNC_SEARCH_MAX_PAGES = timeout, pages
    settings.POS_SYNC_CLAIM_LEASE = None

    assert claim_lease() == expected
    assert push_call_chain().calls == pages + 2
    check_claim_lease()  # the derived lease is never refused


def test_a_configured_lease_shorter_than_a_push_can_take_is_refused(settings):
    settings.SQUARE_TIMEOUT_SECONDS, settings.POS_SYNC_SEARCH_MAX_PAGES = 10.0, 10

    settings.POS_SYNC_CLAIM_LEASE = timedelta(minutes=8)
    with pytest.raises(ImproperlyConfigured, match=r"POS_SYNC_CLAIM_LEASE_MINUTES.*shorter than the worst case"):
        check_claim_lease()

    settings.POS_SYNC_CLAIM_LEASE = timedelta(minutes=9)  # exactly the worst case, or longer: kept
    check_claim_lease()
    assert claim_lease() == timedelta(minutes=9)
    settings.POS_SYNC_CLAIM_LEASE = timedelta(minutes=30)
    assert claim_lease() == timedelta(minutes=30)

    settings.POS_SYNC_CLAIM_LEASE = timedelta(minutes=9)
    settings.SQUARE_TIMEOUT_SECONDS = 30.0  # a longer timeout makes the same lease too short (25 min needed)
    with pytest.raises(ImproperlyConfigured):
        check_claim_lease()

    settings.POS_SYNC_CLAIM_LEASE, settings.POS_SYNC_SEARCH_MAX_PAGES = None, 0
    with pytest.raises(ImproperlyConfigured, match="POS_SYNC_SEARCH_MAX_PAGES"):
        check_claim_lease()


def _start_django(**env: str) -> subprocess.CompletedProcess[str]:
    """A fresh process on the production settings, configured by the environment (as a worker is)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("POS_SYNC_", "SQUARE_"))}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    code = (
        "import django; django.setup(); from django.conf import settings; from pos_sync.leases import claim_lease; "
        "print(settings.POS_SYNC_CLAIM_LEASE, claim_lease())"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow  # three fresh Django processes
def test_a_process_refuses_to_start_with_a_lease_from_the_environment_shorter_than_a_push():
    refused = _start_django(POS_SYNC_CLAIM_LEASE_MINUTES="5")
    assert refused.returncode != 0
    assert "ImproperlyConfigured" in refused.stderr and "POS_SYNC_CLAIM_LEASE_MINUTES" in refused.stderr

    # the override still works when it is long enough, and unset the lease is derived
    assert _start_django(POS_SYNC_CLAIM_LEASE_MINUTES="30").stdout.split() == ["0:30:00", "0:30:00"]
    assert _start_django().stdout.split() == ["None", "0:09:00"]


# --- the heartbeat: renewed while paging, checked before creating ------------------------------


def _seed_other_orders(square, location_id: str, count: int) -> None:
    """The restaurant's own orders at the location, created now: what the look-up must read through."""
    for i in range(count):
        square.app.add_order(
            location_id=location_id,
            reference_id=f"walk-in-{i}",
            line_items=[{"name": "Tea", "quantity": "1", "base_price_money": {"amount": 300, "currency": "USD"}}],
        )


def _job_past_the_key_window() -> SyncJob:
    """A job first tried 25 hours ago: its push reads SearchOrders before creating anything."""
    job = SyncJobFactory()
    SyncJob.objects.filter(pk=job.pk).update(first_attempted_at=job.next_attempt_at - timedelta(hours=25))
    return job


def _let_the_lease_run_out(job: SyncJob) -> None:
    """What the passing of a whole lease would do: the claim's lease (by the database's clock) and
    the job's set-aside both run out."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_claim SET lease_expires_at = clock_timestamp() - interval '1 second' "
            "WHERE key LIKE %s AND completed_at IS NULL",
            [f"pos-sync:{job.order_id}:%"],
        )
    SyncJob.objects.filter(pk=job.pk).update(next_attempt_at=job.next_attempt_at - timedelta(days=1))


@pytest.mark.django_db(transaction=True)
def test_a_push_whose_lease_is_lost_while_it_reads_square_stops_before_creating_anything(square, monkeypatch):
    # given: a job past Square's key window, at a location with two pages of other orders
    job = _job_past_the_key_window()
    _seed_other_orders(square, job.order.connection.location_id, PAGE + 1)
    successor = []
    heartbeats = []

    def page_read_too_slowly(held, lease):
        # Between the search's pages: meanwhile the lease ran out and another worker took the job.
        if not successor:
            _let_the_lease_run_out(job)
            [taken] = race([lambda: take_due_jobs(batch_size=10)])
            assert taken.ok, repr(taken.error)
            successor.extend(taken.result[0])
        heartbeats.append(renew(held, lease))
        return heartbeats[-1]

    monkeypatch.setattr(drain, "renew", page_read_too_slowly)

    # when: the first worker pushes the job
    result = push_due_jobs()

    # then: it stopped at its first heartbeat, after one page, and sent Square nothing that creates
    assert (result.taken, result.lost, result.succeeded, result.failed) == (1, 1, 0, 0)
    assert heartbeats == [False]
    assert len(square.app.requests_to("POST", SEARCH)) == 1
    assert square.app.requests_to("POST", ORDERS) == []
    assert square.app.requests_to("POST", PAYMENTS) == []
    assert sum(BeaconCount.objects.filter(kind=LEASE_LOST).values_list("count", flat=True)) == 1
    # it recorded nothing: the claim and the job are the successor's
    [taken] = successor
    claim_row = Claim.objects.get(key=taken.held.key)
    assert claim_row.token == taken.held.token and claim_row.completed_at is None
    job.refresh_from_db()
    assert (job.status, job.attempts) == (SyncJobStatus.PENDING, 0)

    # when: the successor pushes it (renewing after each of the two pages and before creating)
    monkeypatch.setattr(drain, "renew", renew)
    assert push_job(taken=taken, actor=drain.DRAIN_ACTOR) == drain.SUCCEEDED

    # then: one order and one payment at Square for it
    job.refresh_from_db()
    created = square.app.requests_to("POST", ORDERS)
    assert job.status == SyncJobStatus.SUCCESS
    assert [r.body["idempotency_key"] for r in created] == [square_order_key(job.order_id)]
    assert len(square.app.requests_to("POST", PAYMENTS)) == 1
    assert len(square.app.requests_to("POST", SEARCH)) == 3


@pytest.mark.django_db(transaction=True)
def test_a_push_renews_its_lease_after_every_search_page_and_before_creating(square, monkeypatch):
    job = _job_past_the_key_window()
    _seed_other_orders(square, job.order.connection.location_id, 2 * PAGE + 1)
    leases = []

    def heartbeat(held, lease):
        still = renew(held, lease)
        leases.append(Claim.objects.get(key=held.key).lease_expires_at)
        return still

    monkeypatch.setattr(drain, "renew", heartbeat)

    assert push_due_jobs().succeeded == 1

    assert len(square.app.requests_to("POST", SEARCH)) == 3
    assert len(leases) == 3 + 1  # after each of the three pages, and right before CreateOrder
    assert leases == sorted(leases) and len(set(leases)) == len(leases)  # each one pushed the expiry on


@pytest.mark.django_db
@pytest.mark.parametrize(("orders", "outcome"), [(PAGE + 1, "dead"), (PAGE, "success")])
def test_the_search_reads_at_most_its_page_bound_and_never_creates_past_it(square, settings, orders, outcome):
    # given: at most one page may be read (the lease is derived from the bound)
    settings.POS_SYNC_SEARCH_MAX_PAGES = 1
    job = _job_past_the_key_window()
    _seed_other_orders(square, job.order.connection.location_id, orders)

    push_due_jobs()

    job.refresh_from_db()
    assert len(square.app.requests_to("POST", SEARCH)) == 1
    if outcome == "dead":  # Square has more: our order could be on the page not read
        assert (job.status, job.last_error_code) == ("dead", "search_limit_reached")
        assert "more than 1 pages" in job.last_error and "Nothing was created" in job.last_error
        assert square.app.requests_to("POST", ORDERS) == []
    else:  # one full page and no more: the whole search was read, so creating is safe
        assert job.status == SyncJobStatus.SUCCESS
        assert len(square.app.requests_to("POST", ORDERS)) == 1
