"""A test client's admin session with its second factor passed, as after a sign-in with a TOTP code.

The admin (config.admin_site) lets in only a session that holds a verified django-otp device.
`Client.force_login` skips every form, the code's too: this gives a staff user one confirmed TOTP
device (once) and records it in the client's session, which is what `django_otp.login` does after a
correct code. The tests apply it to every force_login (tests/conftest.py) and the page benchmarks to
their signed-in clients (bench/proof/pages.signed_in); a real sign-in with a code is proven in
tests/browser/test_admin_sign_in.py.
"""

from django.contrib.auth import SESSION_KEY, get_user_model
from django.test import Client

DEVICE_NAME = "test authenticator"


def pass_second_factor(client: Client) -> None:
    """No-op for a client without a session or with a non-staff user (affiliates never need one)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    session = client.session
    user = get_user_model().objects.filter(pk=session.get(SESSION_KEY), is_staff=True).first()
    if user is None:
        return
    devices = TOTPDevice.objects.filter(user=user, name=DEVICE_NAME, confirmed=True).order_by("pk")
    device = devices.first() or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=True)
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
