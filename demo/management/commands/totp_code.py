"""The demo's stand-in for an authenticator app: the current TOTP code of a demo admin's device."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Demo only (DEBUG on): print the current admin sign-in code of <username>, and its otpauth:// URL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        # Reading a code off the server defeats the second factor: only the demo, on sandbox data, may.
        if not settings.DEBUG:
            raise CommandError("totp_code is for the demo only (DJANGO_DEBUG=true): use an authenticator app.")
        device = TOTPDevice.objects.filter(user__username=options["username"], confirmed=True).order_by("pk").first()
        if device is None:
            raise CommandError(f"{options['username']} has no TOTP device (manage.py seed_demo adds the demo's).")
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        code = str(totp.token()).zfill(device.digits)
        seconds_left = device.step - int(totp.time - device.t0) % device.step
        self.stdout.write(f"{code}   (the next code in {seconds_left} s; each code signs in once)")
        self.stdout.write(f"otpauth URL for an authenticator app: {device.config_url}")
