"""Fixtures of the fault-injection suite: the whole system as real processes, one stack per test.

One stack per test, not per session: pytest-django empties the test database after every
transactional test (and re-creates content types under new ids), so children that outlived a test
would write with stale cached ids. Starting everything takes about 4 seconds.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from tests.chaos.stack import ChaosStack, database_url
from tests.summary import SummarySection

SUMMARY = SummarySection("fault-injection summary")  # one line per scenario, keyed by its number (issue 9)


@pytest.fixture
def chaos_long(request: pytest.FixtureRequest) -> bool:
    # default=: when the whole suite runs from the root, this conftest loads after the command line
    # was parsed, and the option exists only with its default.
    return bool(request.config.getoption("chaos_long", default=False))


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.fail("The fault-injection suite needs Redis: set TEST_REDIS_URL (bin/test does).")
    return redis_url_of_this_worker(url, os.environ.get("PYTEST_XDIST_WORKER", ""))


def redis_url_of_this_worker(url: str, worker: str) -> str:
    """TEST_REDIS_URL's database for the serial run and xdist's first worker (gw0), the databases below
    it for gw1, gw2...: a stack flushes its database as it starts and stops, so two workers' stacks
    must never share one (their test databases differ already: pytest-django suffixes them)."""
    if not worker:
        return url
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0) - int(worker.removeprefix("gw"))
    if database < 0:
        pytest.fail(f"TEST_REDIS_URL {url}: no Redis database left for xdist worker {worker} (pick a higher one)")
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture
def stack(transactional_db: None, redis_url: str, request: pytest.FixtureRequest) -> Iterator[ChaosStack]:
    """gunicorn (4 workers), 2 Celery workers and the 3 stand-ins, on the test database; always stopped.

    Depends on transactional_db so that it is torn down first: every child is dead before
    pytest-django empties the tables."""
    log_dir = Path(tempfile.mkdtemp(prefix=f"chaos-{request.node.name[:40]}-"))
    running = ChaosStack(db_url=database_url(connection.settings_dict), redis_url=redis_url, log_dir=log_dir)
    try:
        running.start()
        yield running
    finally:
        failed = getattr(request.node, "chaos_failed", False) or not running.site_url
        if failed:
            print(f"\nlogs of the failed run: {log_dir}\n{running.tails()}", flush=True)
        running.stop()
        assert not running.leftovers(), f"child processes left running: {running.leftovers()}"
        if not failed:
            shutil.rmtree(log_dir, ignore_errors=True)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call" and report.failed:
        item.chaos_failed = True  # type: ignore[attr-defined]
    return report
