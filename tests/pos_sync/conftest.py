import pytest

from tests.pos_sync.standin import start_square


@pytest.fixture
def square(settings):
    """The Square stand-in on a loopback port, with the SDK pointed at it. Yields the RunningStandIn:
    `.app` is the stand-in (its orders, payments, refunds and request record)."""
    running = start_square()
    settings.SQUARE_BASE_URL = running.url
    settings.SQUARE_TIMEOUT_SECONDS = 10.0  # healthy answers only (timeout tests set SHORT_TIMEOUT)
    yield running
    running.stop()
