"""Fixtures of the proof tests, and the summary lines they print at the end of every run (CI too)."""

from collections.abc import Iterator

import pytest

from sandbox.core import RunningStandIn
from sandbox.square import SquareStandIn
from sandbox.stripe import StripeStandIn
from tests.summary import SummarySection

STRIPE_KEY = "sk_test_proof"

SUMMARY = SummarySection("proof: statements, query growth, API fuzzing")
summary_line = SUMMARY.add


@pytest.fixture
def square(settings) -> Iterator[RunningStandIn]:
    running = RunningStandIn(SquareStandIn())
    settings.SQUARE_BASE_URL = running.url
    settings.SQUARE_TIMEOUT_SECONDS = 5.0
    yield running
    running.stop()


@pytest.fixture
def stripe(settings) -> Iterator[RunningStandIn]:
    running = RunningStandIn(StripeStandIn(api_key=STRIPE_KEY))
    settings.STRIPE_API_BASE = running.url
    settings.STRIPE_SECRET_KEY = STRIPE_KEY
    settings.STRIPE_TIMEOUT_SECONDS = 5.0
    yield running
    running.stop()
