from datetime import timedelta

import pytest

from core.claims import claim, claimed, complete, is_claimed, release
from core.errors import ValidationError
from core.models import Claim

pytestmark = pytest.mark.django_db


def test_first_claim_wins_second_loses():
    assert claim("email:1").won
    assert not claim("email:1").won
    assert Claim.objects.count() == 1


def test_release_gives_the_work_back_but_only_to_the_holder():
    held = claim("push:1")
    intruder = claim("push:1")
    assert not release(intruder)
    assert release(held)
    assert claim("push:1").won


def _age(key: str, by: timedelta) -> None:
    """As if `by` had passed on the database's clock, the one that decides leases (core.claims)."""
    row = Claim.objects.get(key=key)
    Claim.objects.filter(key=key).update(
        claimed_at=row.claimed_at - by,
        lease_expires_at=row.lease_expires_at - by if row.lease_expires_at else None,
        completed_at=row.completed_at - by if row.completed_at else None,
    )


def test_expired_lease_can_be_taken_over_but_completed_claim_never():
    first = claim("pos:1", lease=timedelta(minutes=10))
    assert not claim("pos:1", lease=timedelta(minutes=10)).won
    _age("pos:1", timedelta(minutes=11))
    second = claim("pos:1", lease=timedelta(minutes=10))
    assert second.won
    assert not release(first), "the dead holder must not release its successor's claim"
    assert complete(second)
    _age("pos:1", timedelta(days=2))
    assert not claim("pos:1", lease=timedelta(minutes=10)).won


def test_claim_without_lease_never_expires():
    claim("mail:1")
    _age("mail:1", timedelta(days=365))
    assert not claim("mail:1").won


def test_context_manager_completes_on_success_and_releases_on_error():
    with claimed("ok") as held:
        assert held.won
    assert Claim.objects.get(key="ok").completed_at is not None

    with pytest.raises(RuntimeError), claimed("boom"):
        raise RuntimeError("the side effect certainly did not happen")
    assert not is_claimed("boom")


def test_context_manager_keeps_claim_on_ambiguous_outcome():
    with pytest.raises(TimeoutError), claimed("maybe", lease=timedelta(minutes=5), keep_on=(TimeoutError,)):
        raise TimeoutError
    row = Claim.objects.get(key="maybe")
    assert row.completed_at is None and row.lease_expires_at is not None


def test_context_manager_reports_a_lost_claim():
    claim("taken")
    with claimed("taken") as held:
        assert not held.won


@pytest.mark.parametrize("key", ["", "   ", "x" * 256, None])
def test_bad_keys_are_refused_and_write_nothing(key):
    with pytest.raises(ValidationError):
        claim(key)
    assert not Claim.objects.exists()
