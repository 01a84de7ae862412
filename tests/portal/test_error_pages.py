"""The portal's error pages are the friendly ones, DEBUG or not: plain words, a way back to the
dashboard, the right status, and nothing of Django's technical pages (URL list, traceback)."""

import logging
from decimal import Decimal

import pytest
from django.test import Client, RequestFactory, override_settings

from core.api_errors import api_server_error
from core.errors import PermissionDenied as DomainPermissionDenied
from payouts.models import Payout
from portal import selectors
from tests.factories.accounts import SuperAdminFactory, UserFactory
from tests.factories.affiliates import AffiliateFactory, CommissionFactory

pytestmark = pytest.mark.django_db

# What Django's technical pages (DEBUG 404 and 500) say, and what a friendly page must never show.
TECHNICAL = ("Technical", "URLconf", "Traceback", "urlpatterns", "Django tried these URL patterns", "DEBUG = True")


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def assert_friendly(response, status: int, heading: str) -> str:
    page = response.content.decode()
    assert response.status_code == status, (response.status_code, page[:300])
    assert f"<h2>{heading}</h2>" in page, page
    assert not [word for word in TECHNICAL if word in page], page
    return page


@pytest.fixture
def alice():
    return AffiliateFactory(user__username="alice")


@pytest.fixture
def bobs_payout():
    bob = AffiliateFactory(user__username="bob")
    CommissionFactory(affiliate=bob, stripe_invoice_id="in_bob_secret")
    return Payout.objects.create(affiliate=bob, amount=Decimal("77.77"), currency="USD")


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_another_affiliates_payout_and_commission_are_the_friendly_404(alice, bobs_payout, debug):
    client = signed_in(alice.user)
    bobs_commission = bobs_payout.affiliate.commissions.get()

    with override_settings(DEBUG=debug):
        for url in (f"/affiliate/payouts/{bobs_payout.pk}/", f"/affiliate/commissions/{bobs_commission.pk}/"):
            response = client.get(url)
            page = assert_friendly(response, 404, "Page not found")
            assert [t.name for t in response.templates][:2] == ["404.html", "portal/error.html"]
            assert 'href="/affiliate/">&larr; Back to your dashboard</a>' in page
            assert "77.77" not in page and "in_bob_secret" not in page and "bob" not in page


def test_a_staff_user_on_the_dashboard_is_told_plainly_to_use_the_admin(alice):
    staff = UserFactory(username="olga", is_staff=True)

    with override_settings(DEBUG=True):
        response = signed_in(staff).get("/affiliate/")

    page = assert_friendly(response, 404, "No affiliate account")
    assert "You are signed in as <strong>olga</strong>" in page
    assert 'action="/affiliate/logout/"' in page  # a way out: sign out, then in as an affiliate
    assert 'href="/admin/">admin site</a>' in page


def test_a_super_admin_and_a_plain_user_without_affiliate_account_get_the_same_page(alice):
    with override_settings(DEBUG=True):
        for user in (SuperAdminFactory(username="kerem"), UserFactory(username="nobody")):
            page = assert_friendly(signed_in(user).get("/affiliate/"), 404, "No affiliate account")
            assert ('href="/admin/"' in page) == user.is_staff


def test_a_path_no_portal_page_matches_is_the_friendly_404_too(alice):
    client = signed_in(alice.user)
    with override_settings(DEBUG=True):
        assert_friendly(client.get("/affiliate/no-such-page/"), 404, "Page not found")
        assert_friendly(Client().get("/affiliate/payouts/abc/"), 404, "Page not found")  # anonymous too
        # without the trailing slash, APPEND_SLASH still redirects first (the catch-all needs the slash)
        redirect = client.get("/affiliate/payouts/abc")
        assert (redirect.status_code, redirect["Location"]) == (301, "/affiliate/payouts/abc/")
        assert client.get("/affiliate").status_code == 301


def test_an_unexpected_error_is_the_friendly_500_with_a_reference_and_the_traceback_in_the_log(
    alice, monkeypatch, caplog
):
    def broken(**kwargs):
        raise RuntimeError("database exploded: secret internals")

    monkeypatch.setattr(selectors, "dashboard_for", broken)
    client = Client(raise_request_exception=False)
    client.force_login(alice.user)

    with override_settings(DEBUG=True), caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get("/affiliate/", headers={"X-Request-ID": "req-support-42"})

    page = assert_friendly(response, 500, "Something went wrong on our side")
    assert "secret internals" not in page and "RuntimeError" not in page
    assert "<code>req-support-42</code>" in page and response["X-Request-ID"] == "req-support-42"
    assert 'href="/affiliate/"' in page
    logged = [r for r in caplog.records if r.name == "django.request" and r.levelno == logging.ERROR]
    assert len(logged) == 1 and logged[0].exc_info[0] is RuntimeError  # the traceback is not lost


def test_a_refusal_is_the_friendly_403(alice, monkeypatch):
    def refused(**kwargs):
        raise DomainPermissionDenied("internal reason nobody should read")

    monkeypatch.setattr(selectors, "dashboard_for", refused)
    with override_settings(DEBUG=True):
        response = signed_in(alice.user).get("/affiliate/")

    page = assert_friendly(response, 403, "You cannot open this page")
    assert "internal reason" not in page and 'href="/affiliate/">&larr; Back to your dashboard' in page


def test_outside_the_portal_django_uses_the_same_friendly_templates_when_debug_is_off(alice):
    # settings_test runs with DEBUG off, as production does
    assert_friendly(Client().get("/no-such-page/"), 404, "Page not found")
    assert Client().get("/api/no-such-endpoint/").json()["error"] == "not_found"  # the API keeps its JSON

    response = api_server_error(RequestFactory().get("/somewhere/"))
    assert response.status_code == 500 and b"Something went wrong on our side" in response.content
    assert b"Traceback" not in response.content
