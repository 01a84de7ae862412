"""The stand-in base: request record, idempotent replay, injected faults."""

import httpx
import pytest

from sandbox.core import IdempotencyConflict, RunningStandIn, StandIn


class Counter(StandIn):
    name = "counter"
    ROUTES = [("POST", r"/things", "create_thing")]

    def reset_state(self) -> None:
        self.things: list[dict] = []

    def create_thing(self, request):
        body = request.json
        return self.idempotency.run(body["key"], repr(sorted(body.items())), lambda: self._create(body))

    def _create(self, body):
        self.things.append(body)
        return 200, {"id": len(self.things)}


@pytest.fixture
def counter():
    running = RunningStandIn(Counter())
    yield running
    running.stop()


def test_same_key_replays_the_first_result_and_records_every_request(counter):
    first = httpx.post(f"{counter.url}/things", json={"key": "k1", "n": 1})
    again = httpx.post(f"{counter.url}/things", json={"key": "k1", "n": 1})
    assert first.json() == again.json() == {"id": 1}
    assert len(counter.app.things) == 1
    assert len(counter.app.requests_to("POST", "/things")) == 2
    assert len(httpx.get(f"{counter.url}/__sandbox__/requests").json()) == 2


def test_same_key_with_other_parameters_is_refused(counter):
    counter.app.idempotency.run("k", "a", lambda: (200, {}))
    with pytest.raises(IdempotencyConflict):
        counter.app.idempotency.run("k", "b", lambda: (200, {}))


def test_timeout_after_commit_creates_the_object_but_the_client_gives_up(counter):
    httpx.post(
        f"{counter.url}/__sandbox__/faults",
        json={"method": "POST", "path": "/things", "mode": "timeout_after_commit", "delay": 2.0},
    )
    with pytest.raises(httpx.TimeoutException):  # 1 s: room for the stand-in to commit first on a busy machine
        httpx.post(f"{counter.url}/things", json={"key": "k2"}, timeout=1.0)
    assert len(counter.app.things) == 1
    assert httpx.post(f"{counter.url}/things", json={"key": "k2"}).json() == {"id": 1}
    assert len(counter.app.things) == 1


def test_error_500_does_no_work_and_drop_connection_raises(counter):
    counter.app.add_fault(method="POST", path="/things", mode="error_500")
    counter.app.add_fault(method="POST", path="/things", mode="drop_connection")
    assert httpx.post(f"{counter.url}/things", json={"key": "k3"}).status_code == 500
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{counter.url}/things", json={"key": "k3"})
    assert counter.app.things == []
    assert httpx.post(f"{counter.url}/things", json={"key": "k3"}).status_code == 200
    assert len(counter.app.things) == 1
