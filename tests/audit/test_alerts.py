"""Beacon counters feed an alert: 5 of one kind in an hour -> one mail and a red admin entry."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from audit.beacons import emit_beacon
from audit.models import BeaconAlert, BeaconCount
from audit.services import raise_beacon_alerts

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
    assert "ALERT: 5" in page and "payout_race_lost" in page and "#ba2121" in page

    alert = BeaconAlert.objects.get()
    client.post("/admin/audit/beaconalert/", {"action": "acknowledge", "_selected_action": [alert.pk]})
    assert BeaconAlert.objects.get().acknowledged_by == superuser
    assert "ALERT: 5" not in client.get("/admin/").content.decode()
