"""Super-admin screens: the sync queue with counts and filters, requeue, orders with their jobs,
connections whose token is write-only."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from audit.models import AuditEntry
from pos_sync.models import OrderStatus, PosConnection, SyncJob, SyncJobStatus
from tests.factories.accounts import UserFactory
from tests.factories.pos_sync import OrderFactory, PosConnectionFactory, SyncJobFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:pos_sync_syncjob_changelist"


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def queue():
    thai = PosConnectionFactory(restaurant_name="Thai Corner")
    return {
        "pending": SyncJobFactory.create_batch(2),
        "success": [SyncJobFactory(status=SyncJobStatus.SUCCESS, attempts=1, provider_order_id="SQ-ORDER-1")],
        "dead": [
            SyncJobFactory(
                status=SyncJobStatus.DEAD, attempts=8, last_error_code="timeout", last_error="CreateOrder: no answer"
            ),
            SyncJobFactory(
                status=SyncJobStatus.DEAD,
                attempts=1,
                last_error_code="unknown_provider",
                provider="lightspeed",
                order=OrderFactory(connection=thai),
            ),
        ],
        "thai": thai,
    }


def listed(response) -> set[int]:
    return {job.pk for job in response.context["cl"].result_list}


def test_the_changelist_shows_counts_per_status(admin_client, queue):
    response = admin_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert response.context["status_counts"] == [
        ("pending", "Waiting to be sent", 2),
        ("success", "Sent", 1),
        ("failed", "Failed, will retry", 0),
        ("dead", "Gave up (needs a requeue)", 2),
    ]
    html = response.content.decode()
    assert 'class="syncjob-count-dead">Gave up (needs a requeue): <strong>2</strong>' in html
    assert 'class="syncjob-count-failed">Failed, will retry: <strong>0</strong>' in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status__exact": "dead"}, lambda q: q["dead"]),
        ({"provider": "lightspeed"}, lambda q: q["dead"][1:]),
        ({"attempts": "8"}, lambda q: q["dead"][:1]),
        ({"last_error_code": "timeout"}, lambda q: q["dead"][:1]),
        ({"last_error_code": "none"}, lambda q: q["pending"] + q["success"]),
        ({"q": "no answer"}, lambda q: q["dead"][:1]),
    ],
)
def test_the_changelist_filters(admin_client, queue, query, expected):
    response = admin_client.get(reverse(CHANGELIST), query)
    assert response.status_code == 200
    assert listed(response) == {job.pk for job in expected(queue)}


def test_the_changelist_filters_by_restaurant(admin_client, queue):
    response = admin_client.get(reverse(CHANGELIST), {"order__connection__id__exact": queue["thai"].pk})
    assert listed(response) == {queue["dead"][1].pk}
    assert "Thai Corner" in response.content.decode()


def test_requeue_moves_dead_jobs_back_and_reports_the_rest(admin_client, superuser, queue):
    dead, other_dead = queue["dead"]
    blocked = SyncJobFactory(status=SyncJobStatus.DEAD, order=queue["pending"][0].order)  # its pair has a live job
    chosen = [dead.pk, other_dead.pk, blocked.pk, queue["pending"][1].pk]

    response = admin_client.post(reverse(CHANGELIST), {"action": "requeue", "_selected_action": chosen}, follow=True)

    messages = [str(m) for m in response.context["messages"]]
    dead.refresh_from_db()
    other_dead.refresh_from_db()
    blocked.refresh_from_db()
    assert (dead.status, dead.attempts) == ("pending", 0)
    assert other_dead.status == "pending"
    assert blocked.status == "dead"
    assert "2 dead job(s) requeued." in messages
    assert any(f"Job #{blocked.pk}:" in m and "already has a live square job" in m for m in messages)
    assert any(f"Job #{queue['pending'][1].pk} is pending, not dead" in m for m in messages)
    entry = AuditEntry.objects.get(object_id=str(dead.pk))
    assert (entry.source, entry.target, entry.actor_label) == ("dead", "pending", superuser.username)


def test_staff_without_the_requeue_permission_gets_no_requeue_action(client, queue):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_syncjob"))
    client.force_login(staff)
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    action_form = response.context["action_form"]  # None when no action at all is offered
    assert "requeue" not in (dict(action_form.fields["action"].choices) if action_form else {})
    client.post(reverse(CHANGELIST), {"action": "requeue", "_selected_action": [queue["dead"][0].pk]})
    queue["dead"][0].refresh_from_db()
    assert queue["dead"][0].status == "dead"


def test_the_status_is_never_editable(admin_client, queue):
    job = queue["dead"][0]
    url = reverse("admin:pos_sync_syncjob_change", args=[job.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    assert 'name="status"' not in response.content.decode()
    admin_client.post(url, {"status": "success", "attempts": 0})
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("dead", 8)


def test_the_order_page_shows_its_jobs(admin_client):
    order = OrderFactory()
    SyncJobFactory(order=order, status=SyncJobStatus.DEAD, last_error="CreateOrder: no answer")
    SyncJobFactory(order=order, provider_order_id="SQ-ORDER-77")
    response = admin_client.get(reverse("admin:pos_sync_order_change", args=[order.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "SQ-ORDER-77" in html and "CreateOrder: no answer" in html
    assert 'name="status"' not in html


def test_queue_for_pos_action_enqueues_closed_orders_once(admin_client):
    closed, open_order = OrderFactory(), OrderFactory(status=OrderStatus.OPEN)
    url = reverse("admin:pos_sync_order_changelist")
    for _ in range(2):
        admin_client.post(url, {"action": "queue_for_pos", "_selected_action": [closed.pk, open_order.pk]})
    assert SyncJob.objects.filter(order=closed).count() == 1
    assert not SyncJob.objects.filter(order=open_order).exists()


def test_the_access_token_is_write_only(admin_client):
    connection = PosConnectionFactory(access_token="sq-secret-token-123", restaurant_name="Sushi Go")
    url = reverse("admin:pos_sync_posconnection_change", args=[connection.pk])
    form = {"restaurant_name": "Sushi Go", "provider": "square", "location_id": "L9", "is_active": "on"}

    assert "sq-secret-token-123" not in admin_client.get(url).content.decode()
    assert (
        "sq-secret-token-123"
        not in admin_client.get(reverse("admin:pos_sync_posconnection_changelist")).content.decode()
    )
    assert "sq-secret-token-123" not in repr(connection) + str(connection)

    admin_client.post(url, {**form, "new_access_token": ""})
    connection.refresh_from_db()
    assert (connection.access_token, connection.location_id) == ("sq-secret-token-123", "L9")  # empty keeps it

    admin_client.post(url, {**form, "new_access_token": "sq-new-token"})
    connection.refresh_from_db()
    assert connection.access_token == "sq-new-token"

    admin_client.post(url, {**form, "clear_access_token": "on"})
    assert PosConnection.objects.get(pk=connection.pk).access_token == ""
