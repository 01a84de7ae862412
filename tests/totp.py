"""What an admin user's authenticator app does: RFC 6238 codes from the key of their TOTP device.

Written here from the RFC (HMAC-SHA1, 30 s steps, 6 digits), not taken from django-otp, so that the
server's check is held to the standard every authenticator app follows.
"""

import hashlib
import hmac
import struct
import time

from django.contrib.auth import get_user_model


def totp(key_hex: str, *, at: float | None = None, step: int = 30, digits: int = 6) -> str:
    counter = int(time.time() if at is None else at) // step
    mac = hmac.new(bytes.fromhex(key_hex), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


def authenticator(username: str):
    """The user's TOTP device (the first confirmed one, created if missing): what their app holds."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = get_user_model().objects.get(username=username)
    devices = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk")
    return devices.first() or TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def fresh_code(device) -> str:
    """A code the device has not accepted yet: each code signs in once, so a second sign-in within the
    same 30 s step takes the next step's code (django-otp accepts one step either way)."""
    device.refresh_from_db()
    now = time.time()
    at = now if device.last_t < int(now) // device.step else (device.last_t + 1) * device.step
    return totp(device.key, at=at, step=device.step, digits=device.digits)
