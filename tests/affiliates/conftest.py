import importlib

import pytest
from django.apps import apps

from affiliates.models import Tier

# The data migration's own function: tests run it (TransactionTestCase flushes migration data).
default_tiers_migration = importlib.import_module("affiliates.migrations.0003_default_tiers")


@pytest.fixture(autouse=True)
def default_tiers(db) -> list[Tier]:
    default_tiers_migration.create_default_tiers(apps, None)
    return list(Tier.objects.order_by("threshold"))


@pytest.fixture
def stripe_standin(settings):
    """The Stripe stand-in on loopback, with the settings pointing the SDK at it (InvoicePayments)."""
    from sandbox.core import RunningStandIn
    from sandbox.stripe import StripeStandIn

    running = RunningStandIn(StripeStandIn(api_key="sk_test_affiliates"))
    settings.STRIPE_API_BASE = running.url
    settings.STRIPE_SECRET_KEY = "sk_test_affiliates"
    settings.STRIPE_TIMEOUT_SECONDS = 10.0
    yield running.app
    running.stop()


@pytest.fixture(autouse=True, scope="session")
def _tasks_registered():
    """Register the tasks before racers enqueue: two threads importing the task modules at once
    (core.enqueue's lazy discovery) can see one of them half-initialised."""
    from config.celery import app as celery_app

    celery_app.loader.import_default_modules()
