"""Enrol an admin user's authenticator: the way in for the first super-admin of a fresh deployment,
whose admin asks for a TOTP code that nobody can give yet. Later devices can also be added in the
admin (Django OTP > TOTP devices), by a super-admin who is signed in."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Add a TOTP device to <username> and print the otpauth:// URL to load into an authenticator app."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator", help="the device's name in the admin")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        if not user.is_staff:
            raise CommandError(f"{user.get_username()} is not staff: only admin users sign in with a code.")
        device = TOTPDevice.objects.create(user=user, name=options["name"], confirmed=True)
        # The key is shown this once, to whoever runs manage.py on the server (who could read it anyway).
        self.stdout.write(f"TOTP device #{device.pk} added for {user.get_username()}. Load this into the app:")
        self.stdout.write(device.config_url)
