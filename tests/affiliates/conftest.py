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
