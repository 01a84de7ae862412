import pytest
from celery._state import _set_task_join_will_block
from django.db import connection
from django.test import Client


def pytest_addoption(parser: pytest.Parser) -> None:
    # Registered here, not in tests/chaos/, so `bin/test --chaos-long` works on the whole suite.
    parser.addoption(
        "--chaos-long",
        action="store_true",
        default=False,
        help="fault-injection suite: bigger variants, and real waits for leases and backoffs instead of "
        "moving the clock forward",
    )


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
