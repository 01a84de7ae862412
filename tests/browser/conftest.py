"""A real browser against the real site: Debian's Chromium driven by Playwright's sync API, pytest-django's
live_server (a thread of this process, its own PostgreSQL connection) and an in-process Wise stand-in.

Playwright's sync API keeps an asyncio loop running in the test thread, which makes Django refuse ORM calls
from that thread (SynchronousOnlyOperation). The ORM calls here are plain blocking ones made between browser
steps, never from inside the loop, so DJANGO_ALLOW_ASYNC_UNSAFE is set for exactly as long as Playwright runs
(this package) and restored after, so that no other test runs with the check switched off.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings as django_settings
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from sandbox.core import RunningStandIn
from sandbox.square import SquareStandIn
from sandbox.stripe import StripeStandIn
from sandbox.wise import WiseStandIn
from tests.summary import SummarySection
from tests.totp import authenticator, fresh_code

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# One page step. A healthy step takes well under a second; the bound only catches a step that never
# completes, so it is generous: a busy machine (Chromium on 2 shared cores) must not fail a step.
TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1280, "height": 900}
SUMMARY = SummarySection("browser")
record = SUMMARY.add


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as running:
            yield running
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (bin/test installs it)")
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture
def new_context(browser: Browser, live_server) -> Iterator:
    """A factory of isolated browser contexts (own cookies: one per person), closed after the test.
    Keyword arguments go to Browser.new_context (e.g. viewport=..., storage_state=... to reuse a sign-in)."""
    opened: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        context = browser.new_context(**{"base_url": live_server.url, "viewport": VIEWPORT, **options})
        context.set_default_timeout(TIMEOUT_MS)
        opened.append(context)
        return context

    yield make
    for context in opened:
        context.close()


def admin_login(context: BrowserContext, username: str, password: str, next_path: str) -> Page:
    """Sign in through the admin login form, as a person would (password and the current code of
    their authenticator app), and land on `next_path`."""
    page = context.new_page()
    page.goto(f"/admin/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.fill("#id_otp_token", fresh_code(authenticator(username)))
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert page.url.endswith(next_path), (page.url, page.locator(".errornote").all_inner_texts())
    return page


def session_login(context: BrowserContext, live_server_url: str, user) -> None:
    """Put a real Django session for `user` into the context's cookie jar (the server checks it as usual)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server_url}])


@pytest.fixture(scope="session")
def artifacts_dir(pytestconfig: pytest.Config) -> Path:
    folder = pytestconfig.rootpath / "artifacts" / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="package")
def wise_server() -> Iterator[RunningStandIn]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    running = RunningStandIn(WiseStandIn(private_key_pem=pem, webhook_url="", auto_complete_seconds=0))
    yield running
    running.stop()


@pytest.fixture
def wise(wise_server: RunningStandIn, settings) -> WiseStandIn:
    """The stand-in, reset, and the site (the live server thread reads the same settings) pointed at it."""
    wise_server.app.reset()
    settings.WISE_API_URL = wise_server.url
    settings.WISE_API_TOKEN = wise_server.app.token
    settings.WISE_PROFILE_ID = wise_server.app.profile_id
    settings.WISE_WEBHOOK_PUBLIC_KEY = wise_server.app.public_key_pem
    settings.WISE_TIMEOUT_SECONDS = 5.0
    return wise_server.app


@pytest.fixture(scope="package")
def square_server() -> Iterator[RunningStandIn]:
    running = RunningStandIn(SquareStandIn())
    yield running
    running.stop()


@pytest.fixture(scope="package")
def stripe_server() -> Iterator[RunningStandIn]:
    running = RunningStandIn(StripeStandIn())
    yield running
    running.stop()


@pytest.fixture
def square(square_server: RunningStandIn, settings) -> SquareStandIn:
    """The Square stand-in, reset, and the site pointed at it (POS sync jobs push orders there)."""
    square_server.app.reset()
    settings.SQUARE_BASE_URL = square_server.url
    return square_server.app


@pytest.fixture
def stripe(stripe_server: RunningStandIn, settings) -> StripeStandIn:
    """The Stripe stand-in, reset, and the site pointed at it (loyalty codes, webhook read-backs)."""
    stripe_server.app.reset()
    settings.STRIPE_API_BASE = stripe_server.url
    return stripe_server.app
