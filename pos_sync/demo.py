"""Demo rows: three restaurants on the Square stand-in, closed orders queued for the drain, one
open order, and one restaurant without a token (its job ends in the dead letters)."""

from io import TextIOBase

from django.conf import settings

from core.actors import SystemActor
from pos_sync import services
from pos_sync.models import PosConnection

ACTOR = SystemActor("demo:seed")
MENU = [
    [
        {"name": "Margherita", "quantity": 2, "unit_price": "11.50"},
        {"name": "Lemonade", "quantity": 2, "unit_price": "3.20"},
    ],
    [{"name": "Ramen", "quantity": 1, "unit_price": "14.00"}],
    [
        {"name": "Burger", "quantity": 3, "unit_price": "12.90"},
        {"name": "Fries", "quantity": 3, "unit_price": "4.10"},
    ],
]
RESTAURANTS = [
    ("Trattoria Demo", "LDEMO1", True, 3),
    ("Noodle Bar Demo", "LDEMO2", True, 2),
    ("Burger Shack (no token)", "LDEMO3", False, 1),
]


def seed(*, stdout: TextIOBase) -> None:
    for name, location, with_token, closed in RESTAURANTS:
        connection, created = PosConnection.objects.get_or_create(
            restaurant_name=name,
            defaults={
                "location_id": location,
                "access_token": settings.SQUARE_ACCESS_TOKEN if with_token else "",
            },
        )
        if not created or connection.orders.exists():
            continue
        for table in range(closed + 1):
            order = services.place_order(
                connection_id=connection.pk,
                table_id=f"T{table + 1}",
                line_items=MENU[table % len(MENU)],
                currency="USD",
                actor=ACTOR,
            )
            if table < closed:  # the last one stays open
                services.close_order(order_id=order.pk, actor=ACTOR, reason="demo")
        stdout.write(f"pos connection {name}: {closed} closed order(s) queued, 1 open\n")
