from collections.abc import Generator

import pytest
from celery._state import _set_task_join_will_block
from django.db import connection
from django.test import Client

from tests import summary


def pytest_addoption(parser: pytest.Parser) -> None:
    # Registered here, not in tests/chaos/, so `bin/test --chaos-long` works on the whole suite.
    parser.addoption(
        "--chaos-long",
        action="store_true",
        default=False,
        help="fault-injection suite: bigger variants, and real waits for leases and backoffs instead of "
        "moving the clock forward",
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # The summary sections of every suite (tests/summary.py), one hook for serial and parallel runs.
    summary.write_all(terminalreporter)


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: hand the summary lines to the controller
        workeroutput[summary.WORKER_OUTPUT_KEY] = summary.worker_output()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """pytest-xdist's controller, as a worker finishes (absent when xdist is not loaded)."""
    summary.merge_worker_output(getattr(node, "workeroutput", {}).get(summary.WORKER_OUTPUT_KEY, {}))


# Tests that one pytest-xdist worker runs back to back (bin/test runs --dist loadgroup), each group
# because its tests share a set-up that would otherwise be paid again on every worker.
SAME_WORKER = {
    "tests/browser/": "browser",  # one Chromium and one set of stand-ins for the package
    "tests/config/test_settings.py": "settings-in-fresh-processes",  # a module fixture starts Django processes
    "tests/demo/test_seed_on_sqlite.py": "demo-on-sqlite",  # a module fixture migrates and seeds a demo
}


def pytest_configure(config: pytest.Config) -> None:
    # xdist's loadscope/loadgroup would otherwise hand out the biggest groups first, ahead of the
    # order pytest_collection_modifyitems sets below (absent without xdist: nothing to do then).
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Generator[None, None, None]:
    """The slow tests first, then the groups above. Around, not before, pytest-django's own sort: it
    then orders the tests stably by how they use the database (plain, transactional, none), so within
    each of those the slow ones start first and a parallel run does not end with one worker still in
    a long test while the other has nothing left. The order stays the serial one otherwise (xdist hands
    the tests out in it), so no worker runs a plain database test after a transactional one emptied the
    tables (the data migrations' rows with them)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    for item in items:
        for prefix, group in SAME_WORKER.items():
            if item.nodeid.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))
    return (yield)


@pytest.fixture(autouse=True)
def _postgres_only_for_database_tests(request: pytest.FixtureRequest) -> None:
    # The guarantees are PostgreSQL's (READ COMMITTED re-check, unique-index waits): never
    # let a run on SQLite pass for a proof.
    if request.node.get_closest_marker("django_db") and connection.vendor != "postgresql":
        pytest.fail("The test suite runs on PostgreSQL only: set DATABASE_URL (see README).")


@pytest.fixture(autouse=True)
def _force_login_passes_the_admin_second_factor(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """The admin asks every staff session for a verified TOTP device (config.admin_site; settings_test
    turns it on). force_login and login skip the sign-in form and its code, so here, in one place for
    the whole suite, a staff user signed in that way gets a device recorded in the session, as a correct
    code would. A test that needs the password-only session marks itself `otp_unverified`."""
    if request.node.get_closest_marker("otp_unverified"):
        return
    from bench.proof.second_factor import pass_second_factor

    def verified(sign_in):
        def sign_in_then_verify(self: Client, *args, **kwargs):
            result = sign_in(self, *args, **kwargs)
            pass_second_factor(self)
            return result

        return sign_in_then_verify

    monkeypatch.setattr(Client, "force_login", verified(Client.force_login))
    monkeypatch.setattr(Client, "login", verified(Client.login))


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("kerem", "kerem@example.com", "pw")


@pytest.fixture(autouse=True)
def _reset_celery_join_flag():
    """Celery's eager apply_async sets and restores a process-global "a join would block" flag
    without a lock; eager tasks started from racing threads can leave it set, and every later
    EagerResult.get() in the session then raises "Never call result.get() within a task!"."""
    yield
    _set_task_join_will_block(False)
