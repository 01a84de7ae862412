"""Pages whose query count must not grow with their data, and builders for their rows.

Shared by tests/proof/test_query_growth.py (asserts equal counts at a small and a larger size,
sized for CI) and bench/pages.py (prints queries and time at 100 and 10,000 rows). The builders use
bulk_create so that 10,000 rows take seconds, and spread the rows over several affiliates,
reviewers, statuses and dates so that an N+1 on any related object would show.
"""

import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from affiliates.models import Affiliate, Commission, KycStatus, TierEvent
from bench.proof.second_factor import pass_second_factor
from payouts.models import Payout, PayoutStatus

STATUSES = [PayoutStatus.REQUESTED, PayoutStatus.APPROVED, PayoutStatus.REJECTED, PayoutStatus.PAID]
CHANGELIST = "/admin/payouts/payout/?status=all"
PAYOUT_API = "/api/payouts/"
DASHBOARD = "/affiliate/"


@dataclass(frozen=True)
class Measured:
    status: int
    queries: int
    seconds: float


def measure(client: Client, url: str, *, repeat: int = 1) -> Measured:
    """Queries of one GET, and its median wall time over `repeat` GETs."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    queries = len(captured)  # now: the next request resets the connection's query log
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url)
        times.append(time.perf_counter() - started)
    times.sort()
    return Measured(response.status_code, queries, times[len(times) // 2] if times else 0.0)


def _users(prefix: str, count: int, **flags: bool) -> list:
    User = get_user_model()
    start = User.objects.filter(username__startswith=prefix).count()
    users = [User(username=f"{prefix}{start + i}", **flags) for i in range(count)]
    for user in users:
        user.set_unusable_password()
    return User.objects.bulk_create(users)


def add_payouts(count: int, *, affiliates: int = 20, reviewers: int = 3) -> None:
    """`count` payouts across `affiliates` affiliates (KYC mixed), statuses and reviewers."""
    owners = Affiliate.objects.bulk_create(
        Affiliate(user=user, kyc_status=[KycStatus.VERIFIED, KycStatus.PENDING][i % 2])
        for i, user in enumerate(_users("payee", affiliates))
    )
    admins = _users("reviewer", reviewers, is_staff=True, is_superuser=True)
    now = timezone.now()
    Payout.objects.bulk_create(
        (
            Payout(
                affiliate=owners[i % len(owners)],
                amount=Decimal("10.00") + i,
                currency="EUR",
                status=STATUSES[i % len(STATUSES)],
                reviewed_by=admins[i % len(admins)] if STATUSES[i % len(STATUSES)] != PayoutStatus.REQUESTED else None,
                reviewed_at=now if STATUSES[i % len(STATUSES)] != PayoutStatus.REQUESTED else None,
            )
            for i in range(count)
        ),
        batch_size=2000,
    )


def add_affiliate_history(affiliate: Affiliate, count: int) -> None:
    """`count` commissions over the 90-day window, count/10 payouts, count/100 + 1 tier events."""
    now = timezone.now()
    start = Commission.objects.filter(affiliate=affiliate).count()
    Commission.objects.bulk_create(
        (
            Commission(
                affiliate=affiliate,
                stripe_invoice_id=f"in_{affiliate.pk}_{start + i}",
                stripe_event_id=f"evt_{affiliate.pk}_{start + i}",
                amount=Decimal("10.00"),
                currency="USD",
                rate=20,
                status=["pending", "approved"][i % 2],
            )
            for i in range(count)
        ),
        batch_size=2000,
    )
    for days in range(0, 90, 7):  # spread over the window in a handful of UPDATEs, whatever the count
        Commission.objects.filter(affiliate=affiliate, stripe_invoice_id__endswith=f"{days}").update(
            created_at=now - timedelta(days=days)
        )
    Payout.objects.bulk_create(
        Payout(affiliate=affiliate, amount=Decimal("1.00"), currency="USD") for _ in range(max(count // 10, 1))
    )
    TierEvent.objects.bulk_create(
        TierEvent(affiliate=affiliate, from_rate=20, to_rate=25, tier_name="Gold", cause="proof")
        for _ in range(count // 100 + 1)
    )


def signed_in(user) -> Client:
    """A client signed in as `user`; an admin user's session has passed the second factor, as the
    admin requires (under pytest, tests/conftest.py already did: then this changes nothing)."""
    client = Client()
    client.force_login(user)
    pass_second_factor(client)
    return client


def superadmin(username: str = "proof-admin"):
    return get_user_model().objects.create_superuser(username, f"{username}@example.com", "pw")


def new_affiliate(username: str = "proof-affiliate") -> Affiliate:
    user = get_user_model().objects.create_user(username, f"{username}@example.com", "pw")
    return Affiliate.objects.create(user=user, kyc_status=KycStatus.VERIFIED)
