"""Honest leases: the database's clock decides them, and a heartbeat (renew) keeps long work's claim.

The worker's clock is moved with time_machine (timezone.now and time in this process); the
database's is not, and cannot be: a worker with a wrong clock must neither take a live claim over
nor stretch or shorten a lease. Rivals run on their own thread and database connection.
"""

import time
from datetime import datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from core.claims import ClaimToken, claim, complete, release, renew
from core.models import Claim
from tests.concurrency import race

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = timedelta(minutes=10)


def db_now() -> datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def expire_in_the_database(key: str) -> None:
    """The lease runs out as the database's clock sees it (what the passing of 10 minutes would do)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_claim SET lease_expires_at = clock_timestamp() - interval '1 second' WHERE key = %s", [key]
        )


def rival_claims(key: str) -> ClaimToken:
    """Another worker, on its own connection, tries to take `key`."""
    [outcome] = race([lambda: claim(key, lease=LEASE)])
    assert outcome.ok, repr(outcome.error)
    return outcome.result


@pytest.mark.parametrize("ahead", [LEASE + timedelta(minutes=1), timedelta(days=1)])
def test_a_worker_whose_clock_runs_ahead_cannot_take_over_a_live_claim(ahead):
    # given: a live claim, leased for 10 minutes
    held = claim("pos:ahead", lease=LEASE)
    assert held.won

    # when: a worker whose clock runs past the lease tries to take it over
    with time_machine.travel(timezone.now() + ahead, tick=True):
        assert timezone.now() > Claim.objects.get(key="pos:ahead").lease_expires_at  # by its clock: run out
        rival = rival_claims("pos:ahead")

    # then: by the database's clock the lease holds, and the holder still has the claim
    assert not rival.won
    assert Claim.objects.get(key="pos:ahead").token == held.token
    assert renew(held, LEASE)
    assert complete(held)


@pytest.mark.parametrize("skew", [-timedelta(hours=1), timedelta(days=1)])
def test_a_workers_clock_never_sets_its_lease(skew):
    # given: a worker whose clock is off by `skew`
    with time_machine.travel(timezone.now() + skew, tick=True):
        # when: it claims, then renews
        before = db_now()
        held = claim("pos:skewed", lease=LEASE)
        claimed = Claim.objects.get(key="pos:skewed")
        renewed = renew(held, LEASE)
        after = db_now()

    # then: both leases run from the database's now, neither stretched nor cut by the skew
    assert held.won and renewed
    assert before <= claimed.claimed_at <= after
    assert claimed.lease_expires_at - claimed.claimed_at == LEASE
    assert before + LEASE <= Claim.objects.get(key="pos:skewed").lease_expires_at <= after + LEASE


def test_a_worker_whose_clock_runs_behind_cannot_keep_an_expired_lease_alive():
    # given: a claim whose holder died; its lease has run out by the database's clock
    dead = claim("pos:behind", lease=LEASE)
    expire_in_the_database("pos:behind")

    # when: a worker whose clock runs an hour behind (so by its clock the lease still holds) claims it
    with time_machine.travel(timezone.now() - timedelta(hours=1), tick=True):
        assert timezone.now() < Claim.objects.get(key="pos:behind").lease_expires_at
        successor = rival_claims("pos:behind")

    # then: it takes the work over; the dead holder can neither renew, release nor complete it
    assert successor.won
    assert not renew(dead, LEASE)
    assert not release(dead)
    assert not complete(dead)
    assert Claim.objects.get(key="pos:behind").token == successor.token


def test_renewing_keeps_a_claim_past_its_first_expiry_and_a_claim_not_renewed_is_taken_over():
    # given: two claims leased for one second; only the first one's holder renews
    short = timedelta(seconds=1)
    renewed, left = claim("push:renewed", lease=short), claim("push:left", lease=short)
    first_expiry = Claim.objects.get(key="push:renewed").lease_expires_at
    assert renew(renewed, LEASE)

    # when: the database's clock passes both first expiries
    while db_now() <= first_expiry + short:
        time.sleep(0.05)

    # then: the renewed claim holds; the other one is taken over
    assert not rival_claims("push:renewed").won
    assert rival_claims("push:left").won
    assert not renew(left, LEASE)
    # and once its holder stops renewing and the lease runs out, the renewed one is taken over too
    expire_in_the_database("push:renewed")
    assert rival_claims("push:renewed").won
    assert not renew(renewed, LEASE)


def test_renew_is_refused_to_a_stranger_and_after_completion():
    held = claim("mail:renew", lease=LEASE)
    stranger = ClaimToken(key="mail:renew", token="not-the-holder", won=True)
    assert not renew(stranger, LEASE)
    assert complete(held)
    assert not renew(held, LEASE)
    row = Claim.objects.get(key="mail:renew")
    assert row.completed_at is not None and row.lease_expires_at is None


def test_a_renewal_racing_a_takeover_of_an_expired_lease_has_exactly_one_winner():
    # A renewal (token still ours) and a takeover (lease ran out) both lock the row: whichever comes
    # second sees the first one's write, so never both win and never neither.
    rounds = 30
    renewals_won = 0
    for round_no in range(rounds):
        key = f"pos:race:{round_no}"
        held = claim(key, lease=LEASE)
        expire_in_the_database(key)

        outcomes = race([lambda held=held: renew(held, LEASE), lambda key=key: claim(key, lease=LEASE).won])
        assert all(o.ok for o in outcomes), [repr(o.error) for o in outcomes]
        renewed, taken_over = (o.result for o in outcomes)
        assert renewed != taken_over, f"round {round_no}: renewed={renewed}, taken over={taken_over}"
        row = Claim.objects.get(key=key)
        assert (row.token == held.token) == renewed
        assert row.lease_expires_at > db_now()  # whoever won holds a live lease
        renewals_won += renewed
    print(f"\n{rounds} rounds: the renewal won {renewals_won}, the takeover {rounds - renewals_won}")
