"""Production settings refuse to start on what this repository publishes; the demo runs on it.

Each case is a fresh process on config.settings configured by its environment alone (no .env file),
as a web or worker process starts: `django.setup()`, or `manage.py check --deploy`. The cases run
concurrently, once per module: Django's start-up takes seconds on a busy machine.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core.published_defaults import PUBLISHED_DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
OWN_VARIABLES = ("DJANGO_", "STRIPE_", "WISE_", "SQUARE_", "EMAIL_", "ADMIN_REQUIRE_OTP", "AXES_")
PRODUCTION = {  # every required secret, none of them published
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "STRIPE_SECRET_KEY": "sk_live_test_only",
    "STRIPE_WEBHOOK_SECRET": "whsec_test_only",
    "WISE_API_TOKEN": "wise-test-only-token",
    "WISE_WEBHOOK_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\ntest-only\n-----END PUBLIC KEY-----",
}
REQUIRED = [name for name in PRODUCTION if name != "DJANGO_DEBUG"]
DEPLOYED = {
    **PRODUCTION,
    "DJANGO_ALLOWED_HOSTS": "backoffice.example.com",
    "EMAIL_URL": "smtp+tls://u:p@mx.example.com:587",
}
SHOW = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DEBUG, s.ADMIN_REQUIRE_OTP, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
    "s.SECURE_HSTS_SECONDS, s.STRIPE_WEBHOOK_SECRET, repr(s.SQUARE_ACCESS_TOKEN)); "
    "print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_HOST_USER, s.EMAIL_HOST_PASSWORD, s.EMAIL_USE_TLS)"
)
SETUP = [sys.executable, "-c", SHOW]
DEPLOY_CHECK = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]

CASES: dict[str, tuple[list[str], dict[str, str]]] = {
    "nothing set": (SETUP, {}),
    "demo": (SETUP, {"DJANGO_DEBUG": "true"}),
    "production": (SETUP, PRODUCTION),
    **{f"published {name}": (SETUP, {**PRODUCTION, name: value}) for name, value in PUBLISHED_DEFAULTS.items()},
    "published value under another name": (SETUP, {**PRODUCTION, "STRIPE_SECRET_KEY": "whsec_sandbox"}),
    **{f"missing {name}": (SETUP, {k: v for k, v in PRODUCTION.items() if k != name}) for name in REQUIRED},
    "smtp": (SETUP, {**PRODUCTION, "EMAIL_URL": "smtp+tls://alerts%40example.com:p%40ss@smtp.example.com:587"}),
    "deploy check": (DEPLOY_CHECK, DEPLOYED),
    "deploy check, plain HTTP": (DEPLOY_CHECK, {**DEPLOYED, "DJANGO_SECURE_SSL_REDIRECT": "false"}),
}


def _run(argv: list[str], variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_VARIABLES)}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DJANGO_READ_DOT_ENV_FILE="false", **variables)
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def started() -> dict[str, subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {case: pool.submit(_run, *CASES[case]) for case in CASES}
        return {case: future.result() for case, future in futures.items()}


def _refused(process: subprocess.CompletedProcess[str], variable: str) -> None:
    assert process.returncode != 0, process.stdout
    last_line = process.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: "), process.stderr[-2000:]
    assert variable in last_line, last_line


def test_debug_is_off_unless_set_so_an_unconfigured_process_refuses_to_start(started):
    _refused(started["nothing set"], "DJANGO_SECRET_KEY")


@pytest.mark.parametrize("variable", list(PUBLISHED_DEFAULTS))
def test_production_refuses_each_published_default(started, variable):
    _refused(started[f"published {variable}"], variable)
    assert "published sandbox value" in started[f"published {variable}"].stderr


def test_production_refuses_a_published_value_under_any_name(started):
    _refused(started["published value under another name"], "STRIPE_SECRET_KEY")


@pytest.mark.parametrize("variable", REQUIRED)
def test_production_refuses_each_missing_secret(started, variable):
    _refused(started[f"missing {variable}"], variable)
    assert "is not set" in started[f"missing {variable}"].stderr


def test_production_with_its_own_secrets_starts_https_only_and_with_the_second_factor(started):
    process = started["production"]
    assert process.returncode == 0, process.stderr[-2000:]
    # DEBUG, OTP, SSL redirect, secure cookies, HSTS a year; the Square token may stay unset (per connection)
    assert process.stdout.splitlines()[0] == "False True True True True 31536000 whsec_test_only ''"
    assert process.stdout.splitlines()[1].startswith("django.core.mail.backends.console.EmailBackend ")


def test_the_demo_runs_on_the_published_sandbox_values_over_plain_http(started):
    process = started["demo"]
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.splitlines()[0] == "True False False False False 0 whsec_sandbox 'square-sandbox-token'"


def test_email_url_configures_smtp_with_starttls_and_credentials(started):
    process = started["smtp"]
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.splitlines()[1] == (
        "django.core.mail.backends.smtp.EmailBackend smtp.example.com 587 alerts@example.com p@ss True"
    )


def test_the_deployment_checks_pass_on_production_settings_and_catch_plain_http(started):
    clean = started["deploy check"]
    assert clean.returncode == 0, clean.stderr[-3000:]
    assert "System check identified no issues" in clean.stdout
    plain = started["deploy check, plain HTTP"]
    assert plain.returncode != 0 and "security.W008" in plain.stderr, plain.stderr[-3000:]
