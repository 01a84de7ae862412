"""Demo data for the embedded run: idempotent, so running it twice changes nothing."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from affiliates import demo as affiliates_demo
from core.actors import SystemActor
from loyalty import demo as loyalty_demo
from loyalty.services import apply_loyalty
from payouts import demo as payouts_demo
from pos_sync import demo as pos_sync_demo

SUPER_ADMINS = [("kerem", "demo-pass-kerem"), ("ana", "demo-pass-ana")]
DEMO_DEVICE = "demo authenticator"  # manage.py totp_code <username> shows its current code
# Each domain app seeds its own part, in dependency order.
SEEDERS = [affiliates_demo.seed, payouts_demo.seed, pos_sync_demo.seed, loyalty_demo.seed]


class Command(BaseCommand):
    help = (
        "Create demo users, affiliates, payouts, orders and Pro subscribers, then run the loyalty tick once "
        "(idempotent)."
    )

    def handle(self, *args: object, **options: object) -> None:
        with transaction.atomic():
            for username, password in SUPER_ADMINS:
                self._super_admin(username, password)
            for seed in SEEDERS:
                seed(stdout=self.stdout)
        # Once now rather than at beat's first tick, 30 minutes in: the loyalty screen has its
        # discounts from the start. After the commit: the tick calls Stripe (the stand-in), and
        # provider calls never run inside an open transaction. A second seed finds them granted.
        self._loyalty_tick()
        self.stdout.write(self.style.SUCCESS("Demo data ready."))

    def _loyalty_tick(self) -> None:
        report = apply_loyalty(actor=SystemActor("demo:seed"))
        self.stdout.write(f"loyalty tick: {report.applied} anniversary discount(s) granted")
        if report.failed:
            self.stdout.write(
                self.style.WARNING(
                    f"loyalty tick: {report.failed} discount(s) could not reach Stripe at {settings.STRIPE_API_BASE} "
                    "(is the stand-in running?): beat's next apply_loyalty tick, every 30 minutes, retries them"
                )
            )

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
