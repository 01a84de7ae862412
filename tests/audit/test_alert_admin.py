"""Beacon alerts in the admin are read-only: the change page edits nothing, nobody adds or deletes
one; the Acknowledge action is the one change, and records who and when."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import Permission

from audit.models import BeaconAlert

pytestmark = pytest.mark.django_db

RAISED = datetime(2026, 11, 25, 10, 5, tzinfo=UTC)
ACKNOWLEDGED = datetime(2026, 11, 25, 10, 40, tzinfo=UTC)


@pytest.fixture
def alert() -> BeaconAlert:
    return BeaconAlert.objects.create(
        kind="payout_race_lost", hour=RAISED.replace(minute=0), count=5, severity="normal", raised_at=RAISED
    )


def test_the_change_page_has_no_editable_field_and_a_post_changes_nothing(client, superuser, django_user_model, alert):
    client.force_login(superuser)
    url = f"/admin/audit/beaconalert/{alert.pk}/change/"

    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("count", "kind", "severity", "acknowledged_by", "acknowledged_at", "raised_at"):
        assert f'name="{name}' not in html, name
    assert 'name="_save"' not in html

    other = django_user_model.objects.create_user("mallory", "m@example.com", "pw")
    response = client.post(
        url, {"count": 0, "acknowledged_by": other.pk, "acknowledged_at_0": "2026-01-01", "acknowledged_at_1": "00:00"}
    )
    assert response.status_code == 403
    alert.refresh_from_db()
    assert (alert.count, alert.acknowledged_by, alert.acknowledged_at) == (5, None, None)


def test_alerts_cannot_be_added_or_deleted_in_the_admin(client, superuser, alert):
    client.force_login(superuser)
    assert client.get("/admin/audit/beaconalert/add/").status_code == 403
    assert client.post(f"/admin/audit/beaconalert/{alert.pk}/delete/", {"post": "yes"}).status_code == 403
    changelist = client.get("/admin/audit/beaconalert/").content.decode()
    assert 'value="delete_selected"' not in changelist and 'value="acknowledge"' in changelist
    assert BeaconAlert.objects.filter(pk=alert.pk).exists()


def test_the_acknowledge_action_records_who_and_when_once(client, superuser, django_user_model, alert):
    client.force_login(superuser)
    with time_machine.travel(ACKNOWLEDGED, tick=False):
        client.post("/admin/audit/beaconalert/", {"action": "acknowledge", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert (alert.acknowledged_by, alert.acknowledged_at, alert.count) == (superuser, ACKNOWLEDGED, 5)

    # a second acknowledgement, by someone else, does not overwrite the first
    second = django_user_model.objects.create_superuser("ayse", "a@example.com", "pw")
    client.force_login(second)
    client.post("/admin/audit/beaconalert/", {"action": "acknowledge", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert (alert.acknowledged_by, alert.acknowledged_at) == (superuser, ACKNOWLEDGED)


def test_staff_without_superuser_cannot_acknowledge(client, django_user_model, alert):
    staff = django_user_model.objects.create_user("sam", "s@example.com", "pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_beaconalert"))
    client.force_login(staff)
    client.post("/admin/audit/beaconalert/", {"action": "acknowledge", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.acknowledged_at is None
