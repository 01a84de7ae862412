"""How long a claim's lease must be: the worst case of the work it covers, derived from the
configured timeouts and retries (one function for every provider), so that a longer timeout makes a
longer lease and a configured lease shorter than the work is refused at start-up.

Leased work is a chain of provider calls made one after the other. Each call is attempted up to
`attempts` times (1 + the client's own inline retries; ours retry none: the task or the drain does,
under a new claim), each attempt bounded by `attempt_timeout`, with `backoff` slept between one
call's attempts in total. The margin covers our own short transactions around the calls, and the
gap between the claim's row being written (where the lease starts) and its commit.

What the arithmetic cannot see: httpx's timeouts bound each socket operation, so a server that
trickles its answer a byte at a time can stretch a read past them, and a paused process (a GC, a
suspended VM) stops no clock. Work that can run long therefore also renews its lease as it goes and
checks it still holds it before any write it must not share (core.claims.renew).
"""

from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

LEASE_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class CallChain:
    what: str  # the work, for messages: "a Square push"
    calls: int
    attempt_timeout: timedelta  # the longest one attempt of one call can take
    attempts: int = 1
    backoff: timedelta = timedelta(0)  # slept between one call's attempts, in total
    margin: timedelta = LEASE_MARGIN


def worst_case(chain: CallChain) -> timedelta:
    """calls x (attempt timeout x attempts + backoff) + margin."""
    return chain.calls * (chain.attempt_timeout * chain.attempts + chain.backoff) + chain.margin


def httpx_attempt_timeout(timeout_seconds: float, *, phases: int) -> timedelta:
    """One request's bound when httpx is given one float: it applies it to each phase separately
    (waiting for a pooled connection, connecting, writing, reading), so they add up."""
    return timedelta(seconds=timeout_seconds * phases)


def check_lease(*, setting: str, configured: timedelta, chain: CallChain) -> None:
    """Refuse a configured lease that the work it covers can outlast: another worker could then take
    the work over while it still runs."""
    needed = worst_case(chain)
    if configured < needed:
        raise ImproperlyConfigured(
            f"{setting} gives a lease of {configured}, shorter than the worst case of {chain.what} "
            f"({needed}: {chain.calls} calls x ({chain.attempt_timeout} x {chain.attempts} attempts + "
            f"{chain.backoff} backoff) + {chain.margin} margin). Raise it, leave it unset for the derived "
            "lease, or lower what the worst case is derived from."
        )
