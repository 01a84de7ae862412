"""Beacon counters feed an alert: 5 of one kind in an hour -> one mail and a red admin entry; a
critical kind (audit.severity) -> one mail on its first beacon, naming the object, once per hour."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from django.utils import timezone

from audit.beacons import emit_beacon, flush_pending_beacons
from audit.models import BeaconAlert, BeaconCount, CriticalBeacon
from audit.services import raise_beacon_alerts
from audit.severity import Severity, beacon_kind, critical_kinds
from payouts.services.attempts import BOUNCED_AGAIN, PAID_AFTER_FAILURE
from payouts.services.settlement import PAID_WITHOUT_RESERVATION
from pos_sync.beacons import DEAD_LETTER, RECONCILE_NOT_OURS
from tests.factories.payouts import PayoutFactory

pytestmark = pytest.mark.django_db

# Counters are per hour: pinned mid-hour so beacons a test emits together always share one.
MID_HOUR = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)


@time_machine.travel(MID_HOUR)
def test_beacon_logs_a_structured_line_and_counts_per_kind_and_hour(caplog):
    emit_beacon("payout_race_lost", object_id=7, current="rejected")
    emit_beacon("payout_race_lost", object_id=8, current="approved")
    emit_beacon("pos_job_dead", job=1)
    assert "[BEACON:payout_race_lost]" in caplog.text and "object_id" in caplog.text
    counts = dict(BeaconCount.objects.values_list("kind", "count"))
    assert counts == {"payout_race_lost": 2, "pos_job_dead": 1}


@time_machine.travel(MID_HOUR)
def test_threshold_raises_one_alert_and_one_mail_however_many_ticks(django_capture_on_commit_callbacks):
    for _ in range(4):
        emit_beacon("payout_race_lost")
    with django_capture_on_commit_callbacks(execute=True):
        assert raise_beacon_alerts() == []
    emit_beacon("payout_race_lost")
    with django_capture_on_commit_callbacks(execute=True):
        assert len(raise_beacon_alerts()) == 1
        assert raise_beacon_alerts() == []
    assert BeaconAlert.objects.get().count == 5
    assert len(mail.outbox) == 1 and "5 x payout_race_lost" in mail.outbox[0].subject


def test_old_hours_do_not_alert():
    BeaconCount.objects.create(kind="old", hour=timezone.now() - timedelta(hours=5), count=50)
    assert raise_beacon_alerts() == []


def test_admin_index_shows_open_alert_in_red_until_acknowledged(client, superuser):
    for _ in range(5):
        emit_beacon("payout_race_lost")
    raise_beacon_alerts()
    client.force_login(superuser)
    page = client.get("/admin/").content.decode()
    # in the index's summary, as a red admin message linking to the open alerts of its kind
    assert "5 &times; Payout race lost" in page and "kind=payout_race_lost" in page and '<li class="error">' in page

    alert = BeaconAlert.objects.get()
    client.post("/admin/audit/beaconalert/", {"action": "acknowledge", "_selected_action": [alert.pk]})
    assert BeaconAlert.objects.get().acknowledged_by == superuser
    assert "5 &times; Payout race lost" not in client.get("/admin/").content.decode()


# --- Critical kinds: the first one alerts --------------------------------------------------------

SITE = "https://backoffice.example.com/"


def run_alerts(capture) -> list[BeaconAlert]:
    """One alert run as the beat task makes it, its on-commit mails sent."""
    with capture(execute=True):
        return raise_beacon_alerts()


def test_the_owning_apps_declare_their_critical_kinds():
    assert set(critical_kinds()) >= {
        PAID_AFTER_FAILURE,
        BOUNCED_AGAIN,
        PAID_WITHOUT_RESERVATION,
        DEAD_LETTER,
        RECONCILE_NOT_OURS,
        "ledger_check_failed",
    }
    assert beacon_kind(PAID_AFTER_FAILURE).subject == "payouts.Payout"
    assert beacon_kind(DEAD_LETTER).subject_key == "job_id"
    assert beacon_kind("payout_race_lost").severity == Severity.NORMAL  # undeclared: the 5-per-hour rule


@time_machine.travel(MID_HOUR)
def test_one_critical_beacon_sends_one_mail_naming_the_object_with_its_admin_link(
    settings, django_capture_on_commit_callbacks, client, superuser
):
    # given: Wise paid a payout after we had released its money, once
    settings.SITE_URL = SITE
    payout = PayoutFactory(books=False)
    emit_beacon(PAID_AFTER_FAILURE, object_id=payout.pk, attempt=1, transfer_id="tr-1", booked="late_success")

    # when: one alert run
    raised = run_alerts(django_capture_on_commit_callbacks)

    # then: one critical alert and one mail that names the payout and links to its admin page
    assert [(a.kind, a.severity, a.count) for a in raised] == [(PAID_AFTER_FAILURE, "critical", 1)]
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.subject.endswith(f"CRITICAL {PAID_AFTER_FAILURE}: payouts.Payout #{payout.pk}")
    link = f"{SITE}admin/payouts/payout/{payout.pk}/change/"
    assert f"payouts.Payout #{payout.pk} at 2026-11-25 10:30:00 UTC\n  {link}" in sent.body
    assert '"transfer_id": "tr-1"' in sent.body
    client.force_login(superuser)
    assert client.get(link.removeprefix(SITE.rstrip("/"))).status_code == 200  # the link is the change page


def test_a_second_critical_beacon_in_the_same_hour_mails_nobody_the_next_hour_mails_again(
    django_capture_on_commit_callbacks,
):
    with time_machine.travel(MID_HOUR):
        emit_beacon(PAID_AFTER_FAILURE, object_id=7)
        assert len(run_alerts(django_capture_on_commit_callbacks)) == 1
    with time_machine.travel(MID_HOUR + timedelta(minutes=20)):
        emit_beacon(PAID_AFTER_FAILURE, object_id=8)
        assert run_alerts(django_capture_on_commit_callbacks) == []
        assert run_alerts(django_capture_on_commit_callbacks) == []  # however many ticks
    assert len(mail.outbox) == 1 and "payouts.Payout #7" in mail.outbox[0].subject
    assert BeaconAlert.objects.get().count == 2  # the alert row keeps counting
    assert sorted(b.details["object_id"] for b in CriticalBeacon.objects.all()) == [7, 8]  # both in the admin

    with time_machine.travel(MID_HOUR + timedelta(hours=1)):
        emit_beacon(PAID_AFTER_FAILURE, object_id=9)
        raised = run_alerts(django_capture_on_commit_callbacks)
    assert [(a.hour.hour, a.count) for a in raised] == [(11, 1)]
    assert len(mail.outbox) == 2 and "payouts.Payout #9" in mail.outbox[1].subject


@time_machine.travel(MID_HOUR)
def test_a_normal_kind_still_needs_five_in_an_hour(settings, django_capture_on_commit_callbacks):
    for number in range(4):
        emit_beacon("payout_race_lost", object_id=number)
    emit_beacon(PAID_AFTER_FAILURE, object_id=1)  # a critical one beside it changes nothing for it
    assert [a.kind for a in run_alerts(django_capture_on_commit_callbacks)] == [PAID_AFTER_FAILURE]
    assert not CriticalBeacon.objects.filter(kind="payout_race_lost").exists()  # no details kept for it

    emit_beacon("payout_race_lost", object_id=4)
    raised = run_alerts(django_capture_on_commit_callbacks)
    assert [(a.kind, a.severity, a.count) for a in raised] == [("payout_race_lost", "normal", 5)]
    assert [m.subject.removeprefix(settings.EMAIL_SUBJECT_PREFIX) for m in mail.outbox] == [
        f"CRITICAL {PAID_AFTER_FAILURE}: payouts.Payout #1",
        "5 x payout_race_lost in one hour",
    ]


@time_machine.travel(MID_HOUR)
def test_a_critical_beacon_inside_a_rolled_back_transaction_still_alerts(django_capture_on_commit_callbacks):
    # The count and the details are queued and written once the transaction is over (audit.beacons).
    with pytest.raises(RuntimeError), transaction.atomic():
        emit_beacon(DEAD_LETTER, job_id=41, order_id=3, provider="square", code="bad_request", attempts=1)
        assert not CriticalBeacon.objects.exists()
        raise RuntimeError("the caller's work failed after the beacon")
    flush_pending_beacons()  # what request and task teardown do
    run_alerts(django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1 and mail.outbox[0].subject.endswith(f"{DEAD_LETTER}: pos_sync.SyncJob #41")
