"""The admin's sign-in in Chromium: username, password and the current code of a TOTP authenticator,
computed here from the device's key as an authenticator app computes it (RFC 6238, tests/totp.py).

Without a valid code no admin page opens: every one sends the browser back to the sign-in form.
"""

import time

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import record
from tests.factories.accounts import SuperAdminFactory
from tests.totp import authenticator, totp

pytestmark = pytest.mark.django_db(transaction=True)
# The index, the payouts a super-admin reviews, the users, and the TOTP devices themselves.
ADMIN_PAGES = ["/admin/", "/admin/payouts/payout/", "/admin/auth/user/", "/admin/otp_totp/totpdevice/"]


def _submit(page: Page, *, username: str, password: str, code: str | None) -> None:
    page.goto("/admin/login/?next=/admin/payouts/payout/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    if code is not None:
        page.fill("#id_otp_token", code)
    with page.expect_navigation():
        page.click("input[type=submit]")


def _errors(page: Page) -> str:
    return " ".join(page.locator(".errornote, .errorlist").all_inner_texts())


def _assert_every_admin_page_sends_back_to_sign_in(page: Page) -> None:
    for path in ADMIN_PAGES:
        response = page.goto(path)
        assert response is not None and response.status == 200  # the sign-in form, after the redirect
        assert "/admin/login/?next=" in page.url, (path, page.url)
        assert page.locator("#id_otp_token").is_visible()


def test_the_admin_opens_only_with_password_and_the_current_totp_code(new_context, live_server):
    started = time.monotonic()
    SuperAdminFactory(username="kerem")  # password "pw"
    device = authenticator("kerem")
    page = new_context().new_page()

    # a password alone: refused, and no admin page opens
    _submit(page, username="kerem", password="pw", code=None)
    assert "/admin/login/" in page.url and "Please enter your OTP token" in _errors(page)
    _assert_every_admin_page_sends_back_to_sign_in(page)

    # the password with a wrong code: refused just the same
    right_now = totp(device.key)
    _submit(page, username="kerem", password="pw", code=f"{(int(right_now) + 1) % 1_000_000:06d}")
    assert "/admin/login/" in page.url and "Invalid token" in _errors(page)
    _assert_every_admin_page_sends_back_to_sign_in(page)

    # the password and the code the authenticator shows now: in, on the page asked for
    _submit(page, username="kerem", password="pw", code=totp(device.key))
    assert page.url.endswith("/admin/payouts/payout/"), (page.url, _errors(page))
    for path in ADMIN_PAGES:
        response = page.goto(path)
        assert response is not None and response.status == 200 and page.url.endswith(path), (path, page.url)
    assert page.locator("#user-tools").inner_text().upper().startswith("WELCOME, KEREM")

    # signing out ends it: the admin asks for the password and a code again
    with page.expect_navigation():
        page.click("#logout-form button[type=submit]")
    _assert_every_admin_page_sends_back_to_sign_in(page)
    record(
        f"admin sign-in with TOTP: {len(ADMIN_PAGES)} pages closed without a code, open with it "
        f"({time.monotonic() - started:.1f} s)"
    )
