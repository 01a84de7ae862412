"""Demo data for the embedded run: idempotent, so running it twice changes nothing."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from affiliates import demo as affiliates_demo
from loyalty import demo as loyalty_demo
from payouts import demo as payouts_demo
from pos_sync import demo as pos_sync_demo

SUPER_ADMINS = [("kerem", "demo-pass-kerem"), ("ana", "demo-pass-ana")]
DEMO_DEVICE = "demo authenticator"  # manage.py totp_code <username> shows its current code
# Each domain app seeds its own part, in dependency order.
SEEDERS = [affiliates_demo.seed, payouts_demo.seed, pos_sync_demo.seed, loyalty_demo.seed]


class Command(BaseCommand):
    help = "Create demo users, affiliates, payouts, orders and Pro subscribers (idempotent)."

    def handle(self, *args: object, **options: object) -> None:
        with transaction.atomic():
            for username, password in SUPER_ADMINS:
                self._super_admin(username, password)
            for seed in SEEDERS:
                seed(stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))

    def _super_admin(self, username: str, password: str) -> None:
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.com", "is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(f"super-admin {username} created")
        # The admin's second factor: one confirmed TOTP device each (a random key, kept on re-seeding).
        _, added = TOTPDevice.objects.get_or_create(user=user, name=DEMO_DEVICE, defaults={"confirmed": True})
        if added:
            self.stdout.write(f"super-admin {username}: TOTP device added (manage.py totp_code {username})")
