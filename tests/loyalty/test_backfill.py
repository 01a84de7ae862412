"""revoke_duplicate_loyalty_codes on the seed incident's shape: 28 customers holding 56 codes."""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEntry
from core.models import Claim
from loyalty.keys import email_claim_key
from loyalty.models import DiscountStatus, LoyaltyDiscount
from sandbox.stripe import DEFAULT_COUPON_ID
from tests.factories.loyalty import LoyaltyDiscountFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db(transaction=True)
DEACTIVATE = r"^/v1/promotion_codes/promo_"
T0 = 1_700_000_000  # when the incident's first tick ran
LEGACY_COUPON = "loyalty-anniversary-10-2023"


def seed_incident(standin) -> dict:
    """28 customers, each with the first tick's code and the second tick's code, 30 minutes apart.

    Our rows tell three stories: 0-9 hold the earlier code; 10-17 hold only the later one (the
    second tick overwrote the row); 18-27 hold both, the later one already revoked here but still
    active at Stripe (its deactivation was lost). 26 and 27's later codes were made under an older
    coupon: only our rows lead to them. Around them: 150 customers with one legitimate code, and
    one customer with two codes for two different anniversaries (not duplicates).
    """
    earlier, later = [], []
    for i in range(28):
        subscription = SubscriptionFactory()
        customer, user_id = subscription.stripe_customer_id, subscription.user_id
        meta = {"user_id": str(user_id), "anniversary": "1"}
        first = standin.seed_promotion_code(code=f"OLD{i}A", customer=customer, created=T0 + i, metadata=meta)
        second = standin.seed_promotion_code(
            code=f"OLD{i}B",
            customer=customer,
            created=T0 + 1800 + i,
            coupon=LEGACY_COUPON if i >= 26 else DEFAULT_COUPON_ID,
            metadata={} if i >= 26 else meta,
        )
        earlier.append(first)
        later.append(second)
        if i < 10 or i >= 18:
            LoyaltyDiscountFactory(
                subscription=subscription,
                status=DiscountStatus.APPLIED,
                code=first["code"],
                stripe_promotion_code_id=first["id"],
            )
        if 10 <= i < 18:
            LoyaltyDiscountFactory(
                subscription=subscription,
                status=DiscountStatus.APPLIED,
                code=second["code"],
                stripe_promotion_code_id=second["id"],
            )
        if i >= 18:
            LoyaltyDiscountFactory(
                subscription=subscription,
                status=DiscountStatus.REVOKED,
                code=second["code"],
                stripe_promotion_code_id=second["id"],
            )
    for n in range(150):
        standin.seed_promotion_code(
            code=f"SOLO{n}", customer=f"cus_solo_{n}", created=T0 + n, metadata={"anniversary": "1"}
        )
    for year in (1, 2):
        standin.seed_promotion_code(
            code=f"TWOYEARS{year}", customer="cus_two_years", metadata={"anniversary": str(year)}
        )
    return {"earlier": earlier, "later": later}


def run(*args: str) -> str:
    out = StringIO()
    call_command("revoke_duplicate_loyalty_codes", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def figure(output: str, label: str) -> int:
    """A count from the summary table."""
    match = re.search(rf"^{re.escape(label)}\s+(\d+)$", output, re.MULTILINE)
    assert match, f"no '{label}' line in:\n{output}"
    return int(match.group(1))


def rows_snapshot() -> list[tuple]:
    return list(
        LoyaltyDiscount.objects.order_by("pk").values_list(
            "pk", "status", "stripe_promotion_code_id", "stripe_closed_at"
        )
    )


def test_dry_run_reports_28_and_changes_nothing(stripe_standin):
    seed_incident(stripe_standin)
    before = rows_snapshot()

    output = run("--dry-run")

    assert "DRY RUN" in output and figure(output, "codes would deactivate") == 28
    assert figure(output, "customers with duplicates") == 28
    assert stripe_standin.requests_to("POST", DEACTIVATE) == []
    assert rows_snapshot() == before and not AuditEntry.objects.exists()


def test_backfill_deactivates_exactly_the_28_later_codes_and_a_second_run_none(stripe_standin):
    seeded = seed_incident(stripe_standin)

    output = run()

    # Stripe: the 28 later codes, and only they, are inactive; each deactivated by one keyed request
    inactive = {p["id"] for p in stripe_standin.promotion_codes.values() if not p["active"]}
    assert inactive == {p["id"] for p in seeded["later"]}
    deactivations = stripe_standin.requests_to("POST", DEACTIVATE)
    assert len(deactivations) == 28
    assert {r.headers["Idempotency-Key"] for r in deactivations} == {f"loyalty:deactivate:{i}" for i in inactive}
    assert all(p["active"] for p in seeded["earlier"])
    # listed by coupon, page by page, plus by customer for those our rows show with two codes
    listings = stripe_standin.requests_to("GET", r"^/v1/promotion_codes$")
    assert sum(1 for r in listings if r.query.get("coupon") == [DEFAULT_COUPON_ID]) == 3  # 204 codes, 100 a page
    assert sum(1 for r in listings if "customer" in r.query) == 10

    # our rows: 10-17's rows that held the later code are revoked, the kept code recorded instead
    later_ids = [p["id"] for p in seeded["later"]]
    revoked = LoyaltyDiscount.objects.filter(stripe_promotion_code_id__in=later_ids, status=DiscountStatus.REVOKED)
    assert revoked.count() == 18 and not revoked.filter(stripe_closed_at__isnull=True).exists()
    live = LoyaltyDiscount.objects.filter(status=DiscountStatus.APPLIED)
    assert set(live.values_list("stripe_promotion_code_id", flat=True)) == {p["id"] for p in seeded["earlier"]}
    assert live.count() == 28
    assert AuditEntry.objects.filter(target="revoked").count() == 8
    assert AuditEntry.objects.filter(target="applied").count() == 8
    recorded = live.filter(
        pk__in=[int(i) for i in AuditEntry.objects.filter(target="applied").values_list("object_id", flat=True)]
    )
    assert recorded.count() == 8
    assert all(Claim.objects.get(key=email_claim_key(r.pk)).completed_at for r in recorded)  # no second email
    assert figure(output, "codes deactivated") == 28
    assert figure(output, "rows revoked") == 8
    assert figure(output, "kept codes recorded as the live row") == 8
    assert figure(output, "active loyalty codes scanned") == 56 + 150 + 2
    assert "100%" in output  # the progress bar ran to the end

    # a second run changes nothing
    before = rows_snapshot()
    stripe_standin.requests.clear()
    again = run()
    assert stripe_standin.requests_to("POST", DEACTIVATE) == []
    assert rows_snapshot() == before
    assert figure(again, "codes deactivated") == 0 and figure(again, "customers with duplicates") == 0


def test_a_stripe_outage_mid_run_fails_loudly_and_a_rerun_finishes_the_job(stripe_standin):
    seeded = seed_incident(stripe_standin)
    stripe_standin.add_fault(method="POST", path=DEACTIVATE, mode="error_500", times=9)  # 3 codes x 3 tries

    with pytest.raises(CommandError, match="3 group"):
        run()
    assert sum(not p["active"] for p in stripe_standin.promotion_codes.values()) == 25

    run()
    inactive = {p["id"] for p in stripe_standin.promotion_codes.values() if not p["active"]}
    assert inactive == {p["id"] for p in seeded["later"]}


def test_unreadable_stripe_is_a_command_error(settings):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    with pytest.raises(CommandError, match="Stripe could not be read"):
        run()
