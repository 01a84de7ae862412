"""Demo affiliates for `manage.py seed_demo`: idempotent, so running it twice changes nothing."""

from datetime import timedelta
from io import TextIOBase

from django.contrib.auth import get_user_model
from django.utils import timezone

from affiliates import services
from affiliates.models import Affiliate, Commission, KycStatus, Referral
from core.actors import SystemActor

DEMO = SystemActor("demo:seed")
# username, starting rate, KYC, paid invoices (cents, days ago) of the restaurant they referred
AFFILIATES = [
    ("bronze_bea", 20, KycStatus.VERIFIED, [(150_000, 75), (150_000, 40), (150_000, 5)]),
    ("gold_gus", 20, KycStatus.VERIFIED, [(200_000, 80), (200_000, 52), (200_000, 24), (200_000, 3)]),
    ("new_nia", 20, KycStatus.PENDING, []),
]


def seed(*, stdout: TextIOBase) -> None:
    for username, rate, kyc, invoices in AFFILIATES:
        affiliate = _affiliate(username, rate, kyc)
        customer_id = f"cus_demo_{username}"
        Referral.objects.get_or_create(stripe_customer_id=customer_id, defaults={"affiliate": affiliate})
        for number, (cents, days_ago) in enumerate(invoices, start=1):
            _paid_invoice(customer_id, f"in_demo_{username}_{number}", cents, days_ago)
    approved = services.approve_held_commissions(actor=DEMO)
    changed = [
        result
        for result in (services.evaluate_tier(affiliate_id=a.pk, actor=DEMO, cause="demo seed") for a in _demo())
        if result.outcome == services.EvaluationOutcome.CHANGED
    ]
    stdout.write(
        f"{len(AFFILIATES)} affiliates ready ({approved} commission(s) approved, {len(changed)} tier change(s))"
    )


def _affiliate(username: str, rate: int, kyc: str) -> Affiliate:
    user, created = get_user_model().objects.get_or_create(
        username=username, defaults={"email": f"{username}@example.com"}
    )
    if created:
        user.set_password("demo-pass-affiliate")
        user.save(update_fields=["password"])
    affiliate, _ = Affiliate.objects.get_or_create(
        user=user, defaults={"commission_rate": rate, "kyc_status": kyc, "wise_recipient_id": f"rcpt-{username}"}
    )
    return affiliate


def _paid_invoice(customer_id: str, invoice_id: str, cents: int, days_ago: int) -> None:
    invoice = services.PaidInvoice(
        event_id=f"evt_demo_{invoice_id}",
        invoice_id=invoice_id,
        customer_id=customer_id,
        amount_paid=cents,
        currency="usd",
    )
    commission = services.record_commission(invoice=invoice, actor=DEMO)
    if commission is not None:
        # Demo history only: spread the commissions over the 90-day window so the chart has weeks.
        Commission.objects.filter(pk=commission.pk).update(created_at=timezone.now() - timedelta(days=days_ago))


def _demo() -> list[Affiliate]:
    return list(Affiliate.objects.filter(user__username__in=[username for username, *_ in AFFILIATES]))
