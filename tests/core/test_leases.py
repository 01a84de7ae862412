"""One function sizes every lease: calls x (attempt timeout x attempts + backoff) + margin."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.leases import CallChain, check_lease, httpx_attempt_timeout, worst_case
from payouts.services.dispatch import dispatch_call_chain, dispatch_lease


def test_the_worst_case_counts_every_attempt_and_every_backoff_of_every_call():
    chain = CallChain(
        what="three retried calls",
        calls=3,
        attempt_timeout=httpx_attempt_timeout(5.0, phases=2),  # 10 s
        attempts=2,
        backoff=timedelta(seconds=5),
        margin=timedelta(seconds=60),
    )
    assert worst_case(chain) == timedelta(seconds=3 * (10 * 2 + 5) + 60)

    check_lease(setting="A_LEASE", configured=timedelta(seconds=135), chain=chain)
    with pytest.raises(ImproperlyConfigured, match=r"A_LEASE .* shorter than the worst case of three retried calls"):
        check_lease(setting="A_LEASE", configured=timedelta(seconds=134), chain=chain)


@pytest.mark.parametrize(("timeout", "minutes"), [(5.0, 2), (10.0, 3), (60.0, 13)])
def test_the_wise_dispatch_lease_is_sized_by_the_same_function(settings, timeout, minutes):
    settings.WISE_TIMEOUT_SECONDS = timeout
    assert dispatch_lease() == worst_case(dispatch_call_chain()) == timedelta(minutes=minutes)
