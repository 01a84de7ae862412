import pytest

from sandbox.core import RunningStandIn
from sandbox.stripe import StripeStandIn

API_KEY = "sk_test_loyalty"


@pytest.fixture
def stripe_standin(settings):
    """The Stripe stand-in on loopback, with the settings pointing the SDK at it."""
    running = RunningStandIn(StripeStandIn(api_key=API_KEY))
    settings.STRIPE_API_BASE = running.url
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_TIMEOUT_SECONDS = 10.0  # healthy answers only (timeout tests set their own)
    yield running.app
    running.stop()


@pytest.fixture
def stripe_url(stripe_standin, settings) -> str:
    return settings.STRIPE_API_BASE
