"""manage.py add_totp_device: enrolling an admin user's authenticator from the server, the way in for
the first super-admin of a deployment. The URL it prints is all the authenticator app gets."""

import base64
import io
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories.accounts import SuperAdminFactory, UserFactory
from tests.totp import totp

pytestmark = pytest.mark.django_db


def test_the_printed_otpauth_url_is_enough_to_sign_in_to_the_admin():
    SuperAdminFactory(username="root")  # password "pw"
    out = io.StringIO()

    call_command("add_totp_device", "root", stdout=out)

    url = out.getvalue().splitlines()[-1]
    assert url.startswith("otpauth://totp/")
    secret = parse_qs(urlsplit(url).query)["secret"][0]
    key_hex = base64.b32decode(secret + "=" * (-len(secret) % 8)).hex()  # what the app stores
    device = TOTPDevice.objects.get(user__username="root")
    assert device.confirmed and device.key == key_hex

    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "root", "password": "pw", "otp_token": totp(key_hex), "next": "/admin/"},
    )
    assert (response.status_code, response["Location"]) == (302, "/admin/")
    assert client.get("/admin/").status_code == 200


def test_it_refuses_unknown_and_non_staff_users():
    UserFactory(username="affiliate-alice")

    with pytest.raises(CommandError, match="No user"):
        call_command("add_totp_device", "nobody", stdout=io.StringIO())
    with pytest.raises(CommandError, match="not staff"):
        call_command("add_totp_device", "affiliate-alice", stdout=io.StringIO())
    assert not TOTPDevice.objects.exists()
