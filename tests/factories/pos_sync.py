from decimal import Decimal

import factory
from django.utils import timezone

from pos_sync.models import Order, OrderStatus, PosConnection, SyncJob, SyncJobStatus

SANDBOX_TOKEN = "square-sandbox-token"  # what the Square stand-in accepts by default


class PosConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PosConnection

    restaurant_name = factory.Sequence(lambda n: f"Restaurant {n}")
    provider = "square"
    location_id = factory.Sequence(lambda n: f"LOC{n:04d}")
    access_token = SANDBOX_TOKEN


class OrderFactory(factory.django.DjangoModelFactory):
    """A closed order (ready to push) whose total matches its lines. status is protected: pass
    status=... to the constructor for another state."""

    class Meta:
        model = Order

    connection = factory.SubFactory(PosConnectionFactory)
    table_id = factory.Sequence(lambda n: f"T{n}")
    line_items = factory.LazyFunction(
        lambda: [
            {"name": "Pasta", "quantity": 2, "unit_price": "12.50"},
            {"name": "Water", "quantity": 1, "unit_price": "3.00"},
        ]
    )
    total = factory.LazyAttribute(
        lambda o: sum((Decimal(line["unit_price"]) * line["quantity"] for line in o.line_items), Decimal("0"))
    )
    currency = "USD"
    placed_at = factory.LazyFunction(timezone.now)
    status = OrderStatus.CLOSED


class SyncJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SyncJob

    order = factory.SubFactory(OrderFactory)
    provider = "square"
    status = SyncJobStatus.PENDING
    next_attempt_at = factory.LazyFunction(timezone.now)
