"""The admin index names every section for finance staff, including the ones libraries bring."""

import pytest

from tests.factories.accounts import SuperAdminFactory

pytestmark = pytest.mark.django_db


def test_library_sections_and_the_header_are_in_plain_words(client):
    client.force_login(SuperAdminFactory())
    page = client.get("/admin/").content.decode()
    for name in ("API access tokens", "Sign-in attempts and lockouts", "Second-factor devices (TOTP)"):
        assert name in page
    for package_name in (">Auth Token<", ">Axes<", ">Otp_Totp<", "Django administration"):
        assert package_name not in page
    assert "<title>What needs attention, and every record | Back office</title>" in page
