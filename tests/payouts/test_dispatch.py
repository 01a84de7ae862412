"""Wise dispatch exactly once: duplicates, concurrency, timeouts, a killed worker, the sweepers.

Every assertion about "what happened at Wise" reads the stand-in's own record.
"""

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import connection
from django.db.models import F
from django.utils import timezone

from audit.models import AuditEntry, BeaconCount
from config.celery import app as celery_app
from core.models import Claim
from ledger.models import Transfer
from payouts.clients.wise import WiseUnavailable
from payouts.keys import dispatch_claim_key, wise_transaction_id
from payouts.models import Payout, PayoutAttempt, PayoutStatus
from payouts.services import (
    cancel_at_wise,
    dispatch_wise_transfer,
    poll_processing_payouts,
    redispatch_stuck_payouts,
    retry_payout,
)
from payouts.services.dispatch import dispatch_lease
from payouts.tasks import dispatch_wise_transfer_task, poll_processing_payouts_task, redispatch_stuck_payouts_task
from tests.concurrency import race
from tests.factories.accounts import SuperAdminFactory
from tests.factories.affiliates import AffiliateFactory
from tests.factories.payouts import PayoutFactory, long_ago
from tests.payouts.helpers import deliver

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _eager_retries():
    """Let eager tasks go through their autoretry loop as a worker would: with
    task_eager_propagates (the test settings) Celery raises Retry instead of retrying."""
    previous = celery_app.conf.task_eager_propagates
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_eager_propagates = previous


def _run(task, *args):
    return task.apply(args=args).get()  # .get() re-raises a task that finally failed


def _approved(**kwargs) -> Payout:
    """An approved payout whose on-commit dispatch has not run (or was lost)."""
    return PayoutFactory(status=PayoutStatus.APPROVED, reviewed_at=timezone.now(), **kwargs)


def _at_wise(wise, payout: Payout) -> tuple[int, int]:
    """(transfers for this payout's attempt, fundings of them) as the stand-in recorded them."""
    transfers = wise.transfers_for(wise_transaction_id(payout_id=payout.pk, attempt=payout.attempt))
    ids = {t["id"] for t in transfers}
    return len(transfers), sum(1 for f in wise.fundings if f["transferId"] in ids)


@pytest.mark.django_db
def test_a_task_delivered_twice_makes_one_transfer_and_one_funding(wise):
    payout = _approved()
    first = _run(dispatch_wise_transfer_task, payout.pk)
    calls = len(wise.requests)
    second = _run(dispatch_wise_transfer_task, payout.pk)

    assert (first, second) == ("funded", "already_funded")
    assert len(wise.requests) == calls == 4  # quote, transfer, read, fund; the redelivery called nothing
    assert _at_wise(wise, payout) == (1, 1)


@pytest.mark.django_db
def test_dispatch_never_reaches_wise_for_a_rejected_or_requested_payout(wise):
    for status in (PayoutStatus.REJECTED, PayoutStatus.REQUESTED, PayoutStatus.CANCELLED, PayoutStatus.PAID):
        assert dispatch_wise_transfer(payout_id=PayoutFactory(status=status).pk) == "not_dispatchable"
    assert dispatch_wise_transfer(payout_id=999999) == "not_dispatchable"
    assert wise.requests == []


@pytest.mark.django_db
def test_a_timeout_after_wise_created_the_transfer_is_retried_with_the_same_id(wise, settings):
    # given: Wise creates the transfer but answers only after our client gave up
    settings.WISE_TIMEOUT_SECONDS = 1.0  # every healthy call of the dispatch must answer within it, on a busy box too
    wise.add_fault(method="POST", path=r"^/v1/transfers$", mode="timeout_after_commit", delay=2.0)
    payout = _approved()
    # when: the task retries (eagerly here) after the timeout
    outcome = _run(dispatch_wise_transfer_task, payout.pk)
    # then
    assert outcome == "funded"
    creates = wise.requests_to("POST", r"^/v1/transfers$")
    assert len(creates) == 2
    assert creates[0].body["customerTransactionId"] == creates[1].body["customerTransactionId"]
    assert creates[0].body["quoteUuid"] == creates[1].body["quoteUuid"]  # the recorded quote is reused
    assert len(wise.quotes) == 1
    assert _at_wise(wise, payout) == (1, 1)


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["error_500", "drop_connection", "error_500_after_commit"])
def test_network_errors_and_5xx_retry_without_a_second_transfer(wise, mode):
    wise.add_fault(method="POST", path=r"^/v1/transfers$", mode=mode, times=2)
    payout = _approved()
    assert _run(dispatch_wise_transfer_task, payout.pk) == "funded"
    assert len(wise.requests_to("POST", r"^/v1/transfers$")) == 3
    assert _at_wise(wise, payout) == (1, 1)


@pytest.mark.django_db
def test_a_lost_funding_answer_is_never_funded_twice(wise):
    # given: Wise funds, then the connection drops: the outcome is unknown to us
    wise.add_fault(method="POST", path=r"/payments$", mode="drop_after_commit")
    payout = _approved()
    # when: the task's retry finds the claim kept (nobody funds blind), then the sweeper comes
    assert _run(dispatch_wise_transfer_task, payout.pk) == "busy"
    payout.refresh_from_db()
    assert payout.status == "processing" and payout.wise_funded_at is None
    _ten_minutes_pass_for_the_lease(payout)
    with time_machine.travel(timezone.now() + timedelta(minutes=10), tick=True):
        assert _run(redispatch_stuck_payouts_task) == 1
    # then: it read the transfer (already funded) and did not fund again
    payout.refresh_from_db()
    assert payout.wise_funded_at is not None
    assert len(wise.requests_to("POST", r"/payments$")) == 1
    assert _at_wise(wise, payout) == (1, 1)


@pytest.mark.django_db
def test_a_refused_funding_is_tried_again_by_the_sweeper_and_funds_once(wise):
    # given: Wise refuses the funding (our balance is short), so nothing was funded
    wise.add_fault(
        method="POST",
        path=r"/payments$",
        mode="status",
        status=422,
        body={"errors": [{"code": "balance.insufficient", "message": "Not enough EUR"}]},
    )
    payout = _approved()
    assert _run(dispatch_wise_transfer_task, payout.pk) == "funding_refused"
    assert BeaconCount.objects.get(kind="payout_funding_refused").count == 1
    # when: the sweeper's run after the grace period
    with time_machine.travel(timezone.now() + timedelta(minutes=10), tick=True):
        assert redispatch_stuck_payouts() == 1
    # then
    payout.refresh_from_db()
    assert payout.wise_funded_at is not None
    assert len(wise.requests_to("POST", r"/payments$")) == 2
    assert _at_wise(wise, payout) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_between_transfer_and_funding_is_taken_over_once(wise, wise_server):
    # given: a worker process that dies (SIGKILL) while its funding request is on the wire
    payout = _approved()
    held = wise.hold("POST", r"/payments$")
    worker = _spawn_dispatch(payout.pk, wise_server.url, wise)
    try:
        # generous: a child process starting Django on a busy machine; costs time only if it never gets there
        assert held.reached.wait(timeout=300), "the worker never reached the funding step"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=120)
    finally:
        held.release()
        if worker.poll() is None:
            worker.kill()
    wise.holds.clear()
    payout.refresh_from_db()
    assert payout.status == "processing" and payout.wise_transfer_id and payout.wise_funded_at is None
    assert _at_wise(wise, payout) == (1, 0)
    claim = Claim.objects.get(key=dispatch_claim_key(payout_id=payout.pk, attempt=1))
    assert claim.completed_at is None  # the dead worker's lease

    # when: Celery redelivers the task at once (acks_late), then the sweeper runs after the lease
    assert _run(dispatch_wise_transfer_task, payout.pk) == "busy"
    assert redispatch_stuck_payouts() == 0  # still inside the grace period
    _ten_minutes_pass_for_the_lease(payout)
    with time_machine.travel(timezone.now() + timedelta(minutes=10), tick=True):
        assert redispatch_stuck_payouts() == 1

    # then: one transfer (the dead worker's), one funding
    payout.refresh_from_db()
    assert payout.wise_funded_at is not None
    assert _at_wise(wise, payout) == (1, 1)
    assert len(wise.requests_to("POST", r"^/v1/transfers$")) == 1


def _ten_minutes_pass_for_the_lease(payout: Payout) -> None:
    """The sweeper's grace passes on our clock (time_machine); the dispatch claim's lease on the
    database's, the one that decides it (core.claims): its expiry is moved 10 minutes back."""
    Claim.objects.filter(key=dispatch_claim_key(payout_id=payout.pk, attempt=payout.attempt)).update(
        lease_expires_at=F("lease_expires_at") - timedelta(minutes=10)
    )


def _spawn_dispatch(payout_id: int, wise_url: str, wise) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "WISE_API_URL": wise_url,
        "WISE_API_TOKEN": wise.token,
        "WISE_PROFILE_ID": wise.profile_id,
    }
    code = (
        "import django; django.setup(); "
        "from payouts.services import dispatch_wise_transfer; "
        f"dispatch_wise_transfer(payout_id={payout_id})"
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_the_dispatch_task_run_twice_concurrently_makes_one_transfer_and_one_funding(wise):
    rounds = 25
    for round_no in range(rounds):
        payout = _approved()
        outcomes = race([lambda: _run(dispatch_wise_transfer_task, payout.pk) for _ in range(2)])
        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
        results = sorted(o.result for o in outcomes)
        assert "funded" in results, (round_no, results)
        assert _at_wise(wise, payout) == (1, 1), round_no
        payout.refresh_from_db()
        assert payout.status == "processing" and payout.wise_funded_at is not None
        assert AuditEntry.objects.filter(object_id=str(payout.pk), target="processing").count() == 1
    assert len(wise.transfers) == len(wise.fundings) == rounds


@pytest.mark.django_db
def test_no_wise_recipient_fails_the_payout_without_calling_wise(wise):
    payout = _approved(affiliate=AffiliateFactory(wise_recipient_id=""))
    assert dispatch_wise_transfer(payout_id=payout.pk) == "failed"
    payout.refresh_from_db()
    assert payout.status == "failed" and "recipient" in payout.provider_status
    assert wise.requests == []
    # no transfer was made: the hold is released with the failure, so a retry can reserve again
    assert Transfer.objects.get(pending_id=f"payout:{payout.pk}:attempt:1:reserve").flag == "void_pending"


@pytest.mark.django_db
def test_a_wise_refusal_before_any_transfer_fails_the_payout_with_wise_reason(wise):
    wise.add_fault(
        method="POST",
        path=r"/quotes$",
        mode="status",
        status=422,
        body={"errors": [{"code": "quote.invalid", "message": "Currency not supported"}]},
    )
    payout = _approved()
    assert dispatch_wise_transfer(payout_id=payout.pk) == "failed"
    payout.refresh_from_db()
    assert payout.status == "failed" and "Currency not supported" in payout.provider_status
    assert wise.transfers == {}


# --- sweepers --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sweeper_redispatches_approved_payouts_whose_enqueue_was_lost(wise):
    lost = PayoutFactory(status=PayoutStatus.APPROVED, reviewed_at=long_ago(30))
    fresh = _approved()  # its on-commit task may still be on its way
    assert _run(redispatch_stuck_payouts_task) == 1
    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert (lost.status, fresh.status) == ("processing", "approved")
    assert _at_wise(wise, lost) == (1, 1) and _at_wise(wise, fresh) == (0, 0)
    assert redispatch_stuck_payouts() == 0  # funded now: nothing to re-enqueue


@pytest.mark.django_db
def test_poller_settles_processing_payouts_from_wise_and_leaves_recent_ones(wise, settings):
    old = _approved()
    recent = _approved()
    for payout in (old, recent):
        dispatch_wise_transfer(payout_id=payout.pk)
        payout.refresh_from_db()
        wise.advance(payout.wise_transfer_id, "outgoing_payment_sent")
    Payout.objects.filter(pk=old.pk).update(dispatched_at=long_ago(120))

    assert _run(poll_processing_payouts_task) == {"applied": 1}

    old.refresh_from_db()
    recent.refresh_from_db()
    assert (old.status, recent.status) == ("paid", "processing")
    entry = AuditEntry.objects.get(object_id=str(old.pk), target="paid")
    assert entry.actor_label == "system:task:poll_processing_payouts"


@pytest.mark.django_db
def test_poller_leaves_a_transfer_still_on_its_way(wise):
    payout = _approved()
    dispatch_wise_transfer(payout_id=payout.pk)
    payout.refresh_from_db()
    wise.advance(payout.wise_transfer_id, "funds_converted")
    Payout.objects.filter(pk=payout.pk).update(dispatched_at=long_ago(120))
    assert poll_processing_payouts() == {"recorded": 1}
    payout.refresh_from_db()
    assert payout.status == "processing"


# --- cancel at Wise ------------------------------------------------------------------------


@pytest.mark.django_db
def test_cancel_at_wise_then_webhook_fails_it_and_retry_reopens_review(wise, client):
    admin = SuperAdminFactory()
    payout = _approved()
    dispatch_wise_transfer(payout_id=payout.pk)
    payout.refresh_from_db()

    cancel_at_wise(payout_id=payout.pk, actor=admin)
    assert wise.transfers[int(payout.wise_transfer_id)]["status"] == "cancelled"
    assert deliver(client, wise, payout.wise_transfer_id, "cancelled", timezone.now().isoformat()).status_code == 200
    payout.refresh_from_db()
    assert payout.status == "failed"

    retry_payout(payout_id=payout.pk, actor=admin)
    transfer_id = payout.wise_transfer_id
    payout.refresh_from_db()
    assert (payout.status, payout.attempt, payout.wise_transfer_id) == ("requested", 2, "")
    # the retry clears the payout's current-attempt columns, never attempt 1's own record
    first = PayoutAttempt.objects.get(payout=payout, number=1)
    assert (first.wise_transfer_id, first.wise_state) == (transfer_id, "cancelled")
    assert first.customer_transaction_id == wise_transaction_id(payout_id=payout.pk, attempt=1)
    assert first.funded_at is not None and first.wise_quote_id


@pytest.mark.django_db
def test_cancel_at_wise_after_funds_converted_shows_wise_reason(wise):
    from core.errors import BusinessRuleViolation

    payout = _approved()
    dispatch_wise_transfer(payout_id=payout.pk)
    payout.refresh_from_db()
    wise.advance(payout.wise_transfer_id, "funds_converted")

    with pytest.raises(BusinessRuleViolation) as caught:
        cancel_at_wise(payout_id=payout.pk, actor=SuperAdminFactory())

    assert caught.value.details["wise_code"] == "transfer.cancellation.not.allowed"
    assert "can no longer be cancelled" in caught.value.message
    payout.refresh_from_db()
    assert payout.status == "processing"
    assert wise.transfers[int(payout.wise_transfer_id)]["status"] == "funds_converted"


@pytest.mark.django_db
def test_cancel_at_wise_needs_a_processing_payout_and_the_permission(wise):
    from core.errors import IllegalTransition, PermissionDenied
    from tests.factories.accounts import UserFactory

    with pytest.raises(IllegalTransition):
        cancel_at_wise(payout_id=_approved().pk, actor=SuperAdminFactory())
    with pytest.raises(PermissionDenied):
        cancel_at_wise(payout_id=_approved().pk, actor=UserFactory(is_staff=True))
    assert wise.requests == []


# --- the dispatch lease --------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("timeout", [1.0, 10.0, 60.0])
def test_the_dispatch_lease_outlasts_four_wise_calls_at_the_configured_timeout(wise, settings, timeout):
    # given: a configured Wise timeout (the old lease was a fixed 2 minutes: too short from 30 s up)
    settings.WISE_TIMEOUT_SECONDS = timeout
    wise.add_fault(method="POST", path=r"/payments$", mode="drop_after_commit")
    payout = _approved()
    # when: the funding's answer is lost, so the dispatch keeps its claim until the lease runs out
    with pytest.raises(WiseUnavailable):
        dispatch_wise_transfer(payout_id=payout.pk)
    # then: the claim the dispatch holds is leased for longer than its worst case of 4 calls
    claim = Claim.objects.get(key=dispatch_claim_key(payout_id=payout.pk, attempt=1))
    lease = claim.lease_expires_at - claim.claimed_at
    assert lease == dispatch_lease()
    assert lease > timedelta(seconds=4 * timeout)
