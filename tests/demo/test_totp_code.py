"""manage.py totp_code: the demo's stand-in for an authenticator app, and only the demo's."""

import io

import pytest
import time_machine
from django.core.management import CommandError, call_command

from tests.factories.accounts import SuperAdminFactory
from tests.totp import authenticator, totp

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("totp_code", *args, stdout=out)
    return out.getvalue()


def test_in_the_demo_it_prints_the_code_an_authenticator_shows_and_the_otpauth_url(settings):
    settings.DEBUG = True
    SuperAdminFactory(username="kerem")
    device = authenticator("kerem")

    with time_machine.travel(1_800_000_015, tick=False):
        code_line, url_line = run("kerem").splitlines()
        assert code_line.split()[0] == totp(device.key)
        assert "the next code in 15 s" in code_line
    assert url_line.startswith("otpauth URL for an authenticator app: otpauth://totp/")
    assert "issuer=Back%20office" in url_line or "issuer=Back+office" in url_line


def test_outside_the_demo_it_refuses(settings):
    assert settings.DEBUG is False  # the tests run with DEBUG off, as production
    SuperAdminFactory(username="kerem")
    authenticator("kerem")

    with pytest.raises(CommandError, match="demo only"):
        run("kerem")


def test_a_user_without_a_device_is_told_how_to_get_one(settings):
    settings.DEBUG = True
    SuperAdminFactory(username="kerem")

    with pytest.raises(CommandError, match="has no TOTP device"):
        run("kerem")
