"""Fixtures of the proof tests, and the summary lines they print at the end of every run (CI too)."""

from collections.abc import Iterator

import pytest

from sandbox.core import RunningStandIn
from sandbox.square import SquareStandIn
from sandbox.stripe import StripeStandIn

STRIPE_KEY = "sk_test_proof"

SUMMARY: list[str] = []


def summary_line(line: str) -> None:
    """Print now (visible with -s) and again in the terminal summary (always visible)."""
    print(line, flush=True)
    SUMMARY.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.section("proof: statements, query growth, API fuzzing")
        for line in SUMMARY:
            terminalreporter.write_line(line)


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
