"""The default tiers' data migration, the beat task names, the API schema and the demo seed."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from affiliates import demo, tasks
from affiliates.models import Affiliate, Commission, Tier, TierEvent
from config.celery import app as celery_app
from tests.affiliates.conftest import default_tiers_migration
from tests.factories.affiliates import AffiliateFactory, CommissionFactory

pytestmark = pytest.mark.django_db


def test_default_tiers_migration_creates_bronze_and_gold_once_and_keeps_admin_edits():
    Tier.objects.all().delete()
    default_tiers_migration.create_default_tiers(apps, None)
    Tier.objects.filter(name="Gold").update(threshold=2500)
    default_tiers_migration.create_default_tiers(apps, None)

    assert list(Tier.objects.order_by("threshold").values_list("name", "commission_rate", "threshold")) == [
        ("Bronze", 20, 0),
        ("Gold", 25, 2500),
    ]
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    assert ("affiliates", "0003_default_tiers") in loader.applied_migrations


def test_every_scheduled_affiliate_task_exists():
    celery_app.loader.import_default_modules()
    names = [
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values() if entry["task"].startswith("affiliates.")
    ]
    assert sorted(names) == [
        "affiliates.tasks.approve_held_commissions",
        "affiliates.tasks.match_unmatched_adjustments",
        "affiliates.tasks.reevaluate_changed_affiliates",
    ]
    for name in [*names, "affiliates.tasks.evaluate_tier", "affiliates.tasks.match_adjustment_invoice"]:
        assert name in celery_app.tasks, name


def test_schema_documents_the_affiliate_endpoints_with_their_errors(admin_client):
    schema = admin_client.get("/api/schema/?format=json").json()
    me = schema["paths"]["/api/affiliates/me/"]["get"]["responses"]
    assert {"200", "403", "404"} <= set(me)
    assert "/api/affiliates/me/commissions/{commission_id}/" in schema["paths"]


def test_demo_seed_is_idempotent(django_capture_on_commit_callbacks):
    def snapshot():
        return (
            sorted(Affiliate.objects.values_list("user__username", "commission_rate")),
            sorted(Commission.objects.values_list("stripe_invoice_id", "status")),
            list(TierEvent.objects.values_list("from_rate", "to_rate")),
        )

    with django_capture_on_commit_callbacks(execute=True):
        demo.seed(stdout=StringIO())
    first = snapshot()
    with django_capture_on_commit_callbacks(execute=True):
        demo.seed(stdout=StringIO())

    assert snapshot() == first
    assert first[0] == [("bronze_bea", 20), ("gold_gus", 25), ("new_nia", 20)]
    assert first[2] == [(20, 25)] and len(first[1]) == 7


def test_beat_tasks_run_their_services(settings):
    settings.COMMISSION_HOLD_DAYS = 30
    affiliate = AffiliateFactory(commission_rate=20)
    held = CommissionFactory(affiliate=affiliate, amount=Decimal("1600.00"))
    Commission.objects.filter(pk=held.pk).update(created_at=timezone.now() - timedelta(days=31))

    assert tasks.approve_held_commissions_task.delay().get() == 1
    assert tasks.reevaluate_changed_affiliates_task.delay().get() == 1
    assert tasks.evaluate_tier_task.delay(affiliate.pk, "again").get() == "unchanged"
    assert Affiliate.objects.get().commission_rate == 25
    assert TierEvent.objects.get().cause == "hourly re-evaluation"
