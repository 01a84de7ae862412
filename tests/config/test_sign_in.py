"""Signing in, through Django's test client: the admin's second factor (config.admin_site, django-otp)
and the throttling of failed sign-ins (django-axes) on the admin and on the affiliate sign-in.

The real browser does the admin sign-in in tests/browser/test_admin_sign_in.py.
"""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.test import Client

from affiliates.models import Affiliate
from bench.proof.second_factor import pass_second_factor
from tests.factories.accounts import SuperAdminFactory, UserFactory
from tests.totp import authenticator, fresh_code

pytestmark = pytest.mark.django_db
ADMIN_PAGES = ["/admin/", "/admin/payouts/payout/", "/admin/auth/user/", "/admin/otp_totp/totpdevice/"]
LIMIT = django_settings.AXES_FAILURE_LIMIT


@pytest.fixture
def kerem():
    user = SuperAdminFactory(username="kerem")  # password "pw"
    authenticator("kerem")
    return user


def admin_sign_in(client: Client, username: str, password: str, code: str | None = None, **extra):
    data = {"username": username, "password": password, "next": "/admin/payouts/payout/"}
    if code is not None:
        data["otp_token"] = code
    return client.post("/admin/login/?next=/admin/payouts/payout/", data, **extra)


def signed_in(client: Client) -> bool:
    return SESSION_KEY in client.session


def assert_no_admin_page(client: Client) -> None:
    for page in ADMIN_PAGES:
        response = client.get(page)
        assert response.status_code == 302, (page, response.status_code)
        assert response["Location"].startswith("/admin/login/?next="), (page, response["Location"])


def assert_admin_pages(client: Client) -> None:
    for page in ADMIN_PAGES:
        assert client.get(page).status_code == 200, page


# --- the second factor ---------------------------------------------------------------------------


def test_password_alone_or_with_a_wrong_code_opens_no_admin_page(client, kerem):
    refused = admin_sign_in(client, "kerem", "pw")
    assert refused.status_code == 200 and "Please enter your OTP token" in refused.content.decode()
    wrong = fresh_code(authenticator("kerem"))
    wrong = f"{(int(wrong) + 1) % 1_000_000:06d}"
    refused = admin_sign_in(client, "kerem", "pw", wrong)
    assert refused.status_code == 200 and "Invalid token" in refused.content.decode()

    assert not signed_in(client)
    assert_no_admin_page(client)


def test_password_and_the_current_code_open_the_admin_and_a_code_signs_in_once(client, kerem):
    code = fresh_code(authenticator("kerem"))

    response = admin_sign_in(client, "kerem", "pw", code)

    assert (response.status_code, response["Location"]) == (302, "/admin/payouts/payout/")
    assert_admin_pages(client)
    replay = Client()
    assert admin_sign_in(replay, "kerem", "pw", code).status_code == 200  # a used code is refused
    assert not signed_in(replay)


@pytest.mark.otp_unverified
@pytest.mark.parametrize("role", ["super-admin", "staff"])
def test_a_session_without_the_second_factor_reaches_no_admin_page(role):
    # given: a password-only session (force_login, without tests/conftest.py's verification)
    user = SuperAdminFactory() if role == "super-admin" else UserFactory(is_staff=True)
    client = Client()
    client.force_login(user)

    # then: the admin treats it as not signed in, on every page
    assert_no_admin_page(client)

    # and once the session holds a verified device (what a correct code records), the admin opens
    pass_second_factor(client)
    assert client.get("/admin/").status_code == 200


def test_admin_users_are_refused_at_the_affiliate_sign_in(client, kerem):
    response = client.post("/affiliate/login/", {"username": "kerem", "password": "pw"})

    assert response.status_code == 200 and "sign in at /admin/, with their second factor" in response.content.decode()
    assert not signed_in(client)


# --- throttling -----------------------------------------------------------------------------------


def test_after_the_failure_limit_the_admin_refuses_even_the_right_password_and_code(client, kerem):
    # given: LIMIT wrong passwords for kerem from one address; the last one is already answered 429
    statuses = [admin_sign_in(client, "kerem", f"guess-{i}").status_code for i in range(LIMIT)]
    assert statuses == [200] * (LIMIT - 1) + [429]

    # when: the right password and the right code, from the same address
    code = fresh_code(authenticator("kerem"))
    locked = admin_sign_in(client, "kerem", "pw", code)

    # then: locked out, not signed in, no admin page
    assert locked.status_code == 429 and "too many login attempts" in locked.content.decode()
    assert not signed_in(client)
    assert_no_admin_page(client)

    # the lock is per username and address: kerem from elsewhere, and others from here, still sign in
    elsewhere = Client(REMOTE_ADDR="198.51.100.7")
    assert admin_sign_in(elsewhere, "kerem", "pw", code).status_code == 302
    SuperAdminFactory(username="ana")
    assert admin_sign_in(Client(), "ana", "pw", fresh_code(authenticator("ana"))).status_code == 302

    # and after the cool-off, kerem signs in from here again
    with time_machine.travel(timedelta(minutes=16) + django_settings.AXES_COOLOFF_TIME, tick=False):
        assert admin_sign_in(client, "kerem", "pw", fresh_code(authenticator("kerem"))).status_code == 302
        assert_admin_pages(client)


def test_a_successful_sign_in_clears_the_failures(client, kerem):
    for _ in range(2):
        for i in range(LIMIT - 1):
            assert admin_sign_in(client, "kerem", f"guess-{i}").status_code == 200
        assert admin_sign_in(client, "kerem", "pw", fresh_code(authenticator("kerem"))).status_code == 302
        client.post("/admin/logout/")
    assert not signed_in(client)


def test_after_the_failure_limit_the_affiliate_sign_in_refuses_the_right_password(client):
    Affiliate.objects.create(user=UserFactory(username="alice"))  # password "pw"

    statuses = [
        client.post("/affiliate/login/", {"username": "alice", "password": f"guess-{i}"}).status_code
        for i in range(LIMIT)
    ]
    locked = client.post("/affiliate/login/", {"username": "alice", "password": "pw", "next": "/affiliate/"})

    assert statuses == [200] * (LIMIT - 1) + [429]
    assert locked.status_code == 429 and not signed_in(client)
    assert client.get("/affiliate/").url.startswith("/affiliate/login/")
    # another address is not locked out
    assert (
        Client(REMOTE_ADDR="198.51.100.7")
        .post("/affiliate/login/", {"username": "alice", "password": "pw"})
        .status_code
        == 302
    )
