"""Demo Pro subscribers for `manage.py seed_demo`: idempotent, so running it twice changes nothing.

Rows go through the same service as the Stripe webhooks (with a read ticket of their own: the demo
plays Stripe here, so there is nothing to read). The apply_loyalty beat tick then grants the due
anniversaries against the Stripe stand-in.
"""

from datetime import timedelta
from io import TextIOBase

from django.contrib.auth import get_user_model
from django.utils import timezone

from core.actors import SystemActor
from loyalty.anniversaries import add_months
from loyalty.models import PRO_PLAN, SubscriptionStatus
from loyalty.services import SubscriptionSnapshot, sync_subscription, take_read_ticket

DEMO = SystemActor("demo:seed")
# username, plan, months on the plan
SUBSCRIBERS = [
    ("pro_paula", PRO_PLAN, 13),  # first anniversary due
    ("pro_pete", PRO_PLAN, 25),  # second anniversary due
    ("pro_priya", PRO_PLAN, 6),  # not yet
    ("basic_ben", "basic", 30),  # not Pro: never
]


def seed(*, stdout: TextIOBase) -> None:
    now = timezone.now().replace(microsecond=0)
    for username, plan, months in SUBSCRIBERS:
        user, _ = get_user_model().objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.com"}
        )
        started = add_months(now, -months) - timedelta(days=1)
        subscription_id = f"sub_demo_{username}"
        sync_subscription(
            snapshot=SubscriptionSnapshot(
                stripe_subscription_id=subscription_id,
                stripe_customer_id=f"cus_demo_{username}",
                status=SubscriptionStatus.ACTIVE,
                plan=plan,
                pro_since=started,
                event_created=started,
                read_ticket=take_read_ticket(stripe_subscription_id=subscription_id),
                user_id=user.pk,
            ),
            actor=DEMO,
        )
    stdout.write(f"{len(SUBSCRIBERS)} demo subscribers ready (the apply_loyalty tick grants their anniversaries)")
