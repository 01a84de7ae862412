import pytest
from celery._state import _set_task_join_will_block

from sandbox.core import RunningStandIn
from sandbox.stripe import StripeStandIn

API_KEY = "sk_test_loyalty"


@pytest.fixture
def stripe_standin(settings):
    """The Stripe stand-in on loopback, with the settings pointing the SDK at it."""
    running = RunningStandIn(StripeStandIn(api_key=API_KEY))
    settings.STRIPE_API_BASE = running.url
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_TIMEOUT_SECONDS = 2.0
    yield running.app
    running.stop()


@pytest.fixture
def stripe_url(stripe_standin, settings) -> str:
    return settings.STRIPE_API_BASE


@pytest.fixture(autouse=True)
def _reset_celery_join_flag():
    """Celery's eager apply_async sets and restores a process-global "a join would block" flag
    without a lock; eager tasks started from racing threads can leave it set, and every later
    EagerResult.get() in the session then raises "Never call result.get() within a task!"."""
    yield
    _set_task_join_will_block(False)
