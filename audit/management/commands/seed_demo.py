"""Demo data for the embedded run: idempotent, so running it twice changes nothing."""

import importlib

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

SUPER_ADMINS = [("kerem", "demo-pass-kerem"), ("ana", "demo-pass-ana")]
# Each domain app seeds its own part, in dependency order.
SEEDERS = ["affiliates.demo", "payouts.demo", "pos_sync.demo", "loyalty.demo"]


class Command(BaseCommand):
    help = "Create demo users, affiliates, payouts, orders and Pro subscribers (idempotent)."

    def handle(self, *args: object, **options: object) -> None:
        with transaction.atomic():
            for username, password in SUPER_ADMINS:
                self._super_admin(username, password)
            for module in SEEDERS:
                importlib.import_module(module).seed(stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))

    def _super_admin(self, username: str, password: str) -> None:
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.com", "is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(f"super-admin {username} created")
