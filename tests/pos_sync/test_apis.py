"""The staff API: close (queues), sync (enqueue), list jobs, requeue; errors as {"error": code}."""

import pytest
from django.test import Client

from pos_sync.models import OrderStatus, SyncJob, SyncJobStatus
from tests.factories.accounts import UserFactory
from tests.factories.pos_sync import OrderFactory, SyncJobFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client: Client, superuser) -> Client:
    client.force_login(superuser)
    return client


def test_closing_an_order_queues_its_sync_job(api):
    order = OrderFactory(status=OrderStatus.OPEN)
    response = api.post(f"/api/pos/orders/{order.pk}/close/", {"reason": "paid"}, content_type="application/json")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["sync_job"]["status"], body["sync_job"]["provider"]) == ("closed", "pending", "square")

    again = api.post(f"/api/pos/orders/{order.pk}/close/", {}, content_type="application/json")
    assert again.status_code == 409
    assert again.json()["error"] == "conflict" and again.json()["current_status"] == "closed"
    assert api.post("/api/pos/orders/999999/close/", {}, content_type="application/json").status_code == 404


def test_sync_answers_201_for_a_new_job_and_200_for_the_live_one(api):
    order = OrderFactory()
    first = api.post(f"/api/pos/orders/{order.pk}/sync/", {}, content_type="application/json")
    second = api.post(f"/api/pos/orders/{order.pk}/sync/", {}, content_type="application/json")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert SyncJob.objects.filter(order=order).count() == 1

    open_order = OrderFactory(status=OrderStatus.OPEN)
    refused = api.post(f"/api/pos/orders/{open_order.pk}/sync/", {}, content_type="application/json")
    assert (refused.status_code, refused.json()["error"]) == (422, "order_not_closed")


def test_list_filters_by_status_and_never_shows_a_token(api):
    dead = SyncJobFactory(status=SyncJobStatus.DEAD, order=OrderFactory(connection__access_token="tok-never-shown"))
    SyncJobFactory()
    response = api.get("/api/pos/sync-jobs/", {"status": "dead"})
    assert response.status_code == 200
    assert [job["id"] for job in response.json()["results"]] == [dead.pk]
    assert "tok-never-shown" not in response.content.decode()
    bad = api.get("/api/pos/sync-jobs/", {"status": "exploded"})
    assert (bad.status_code, bad.json()["error"]) == (400, "validation_error")


def test_requeue_through_the_api(api):
    dead = SyncJobFactory(status=SyncJobStatus.DEAD, attempts=8)
    response = api.post(f"/api/pos/sync-jobs/{dead.pk}/requeue/", {"reason": "fixed"}, content_type="application/json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["attempts"]) == ("pending", 0)
    again = api.post(f"/api/pos/sync-jobs/{dead.pk}/requeue/", {}, content_type="application/json")
    assert (again.status_code, again.json()["current_status"]) == (409, "pending")


def test_only_staff_may_call_it(client):
    order = OrderFactory()
    assert client.post(f"/api/pos/orders/{order.pk}/sync/").status_code in (401, 403)
    client.force_login(UserFactory())
    response = client.post(f"/api/pos/orders/{order.pk}/sync/")
    assert (response.status_code, response.json()["error"]) == (403, "permission_denied")
    assert not SyncJob.objects.exists()


def test_the_schema_documents_the_endpoints_and_their_errors(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    sync_responses = set(paths["/api/pos/orders/{order_id}/sync/"]["post"]["responses"])
    assert sync_responses == {"200", "201", "400", "403", "404", "422"}
    assert "409" in paths["/api/pos/sync-jobs/{job_id}/requeue/"]["post"]["responses"]
    assert "/api/pos/sync-jobs/" in paths
