"""apply_loyalty and its steps against the Stripe stand-in: one code per anniversary whatever the
clock, crashes, retries and Stripe's answers do."""

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core import mail
from django.db import IntegrityError, connection
from django.db.models import Sum
from django.utils import timezone

from audit.models import AuditEntry, BeaconCount
from core.actors import SystemActor
from core.errors import Conflict, IllegalTransition
from core.models import Claim
from loyalty.keys import email_claim_key, loyalty_code, stripe_promotion_code_key
from loyalty.models import DiscountStatus, LoyaltyDiscount, SubscriptionStatus
from loyalty.services import apply_loyalty, finish_discount, revoke_discount, send_loyalty_email
from loyalty.services.grants import RESUME_AFTER, GrantOutcome
from sandbox.stripe import DEFAULT_COUPON_ID
from tests.factories.loyalty import LoyaltyDiscountFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db(transaction=True)
TICK = SystemActor("task:apply_loyalty")
CREATE = r"^/v1/promotion_codes$"
ROOT = Path(__file__).resolve().parents[2]


def tick() -> dict[str, int]:
    return apply_loyalty(actor=TICK).as_dict()


def creates(standin) -> list:
    return standin.requests_to("POST", CREATE)


# --- the basic grant ----------------------------------------------------------------------------


def test_a_due_subscriber_gets_one_customer_restricted_single_use_code(stripe_standin):
    subscription = SubscriptionFactory()

    report = tick()

    assert report["created"] == report["applied"] == 1
    discount = LoyaltyDiscount.objects.get()
    assert discount.status == DiscountStatus.APPLIED and discount.anniversary == 1
    [code] = stripe_standin.promotion_codes.values()
    assert discount.stripe_promotion_code_id == code["id"]
    assert code["customer"] == subscription.stripe_customer_id
    assert code["max_redemptions"] == 1
    assert code["promotion"] == {"type": "coupon", "coupon": django_settings.LOYALTY_COUPON_ID}
    assert code["code"] == discount.code == loyalty_code(user_id=subscription.user_id, anniversary=1)
    [request] = creates(stripe_standin)
    assert request.headers["Idempotency-Key"] == (
        f"loyalty:promotion-code:user-{subscription.user_id}:{subscription.stripe_subscription_id}:anniversary-1"
    )
    assert request.headers["Authorization"] == f"Bearer {django_settings.STRIPE_SECRET_KEY}"
    [email] = mail.outbox
    assert email.to == [subscription.user.email] and "Loyalty Bonus" in email.subject
    assert discount.code in email.body and discount.code in email.alternatives[0][0]
    assert list(AuditEntry.objects.values_list("source", "target", "actor_label")) == [
        ("pending", "applied", TICK.label)
    ]


def test_not_yet_due_not_pro_and_inactive_subscribers_get_nothing(stripe_standin):
    SubscriptionFactory(pro_started_at=timezone.now() - timedelta(days=364))
    SubscriptionFactory(plan="basic")
    SubscriptionFactory(status=SubscriptionStatus.PAST_DUE)
    SubscriptionFactory(status=SubscriptionStatus.CANCELED)

    report = tick()

    assert report["created"] == 0 and LoyaltyDiscount.objects.count() == 0
    assert stripe_standin.requests == [] and mail.outbox == []


def test_a_second_anniversary_is_granted_once_and_earlier_years_are_not_backfilled(stripe_standin):
    from loyalty.anniversaries import add_months

    subscription = SubscriptionFactory(pro_started_at=add_months(timezone.now(), -24) - timedelta(hours=1))

    tick()
    tick()

    assert list(LoyaltyDiscount.objects.values_list("anniversary", "status")) == [(2, "applied")]
    assert len(stripe_standin.promotion_codes) == 1 and len(mail.outbox) == 1
    assert "2 years" in mail.outbox[0].subject
    assert loyalty_code(user_id=subscription.user_id, anniversary=2) in mail.outbox[0].body


def test_a_second_tick_skips_a_granted_subscriber_before_any_stripe_call(stripe_standin):
    SubscriptionFactory.create_batch(3)
    tick()
    calls = len(stripe_standin.requests)

    report = tick()

    assert report["already_granted"] == 3 and report["created"] == 0
    assert len(stripe_standin.requests) == calls == 3  # pre-flight: nothing more reached Stripe


def test_the_partial_unique_allows_one_live_row_per_user_and_anniversary_but_keeps_revoked_history():
    live = LoyaltyDiscountFactory(status=DiscountStatus.APPLIED)
    with pytest.raises(IntegrityError):
        LoyaltyDiscountFactory(subscription=live.subscription, status=DiscountStatus.PENDING)
    with pytest.raises(IntegrityError):
        LoyaltyDiscountFactory(subscription=live.subscription, status=DiscountStatus.SKIPPED)
    LoyaltyDiscountFactory(subscription=live.subscription, status=DiscountStatus.REVOKED)
    LoyaltyDiscountFactory(subscription=live.subscription, status=DiscountStatus.REVOKED)
    LoyaltyDiscountFactory(subscription=live.subscription, anniversary=2)
    assert LoyaltyDiscount.objects.count() == 4


def test_status_is_protected_and_moves_only_along_declared_transitions(stripe_standin):
    discount = LoyaltyDiscountFactory()
    with pytest.raises(AttributeError):
        discount.status = DiscountStatus.APPLIED
    revoke_discount(discount_id=discount.pk, actor=TICK, reason="test")
    with pytest.raises(IllegalTransition) as refused:
        revoke_discount(discount_id=discount.pk, actor=TICK)
    assert refused.value.details["from"] == "revoked" and refused.value.details["allowed"] == []


def test_revoking_from_a_status_the_actor_no_longer_sees_is_a_conflict(stripe_standin):
    discount = LoyaltyDiscountFactory()
    finish_discount(discount_id=discount.pk, actor=TICK)  # pending -> applied meanwhile

    with pytest.raises(Conflict) as lost:
        revoke_discount(discount_id=discount.pk, actor=TICK, expected_status=DiscountStatus.PENDING)

    assert lost.value.details["current_status"] == "applied"
    assert BeaconCount.objects.get(kind="loyaltydiscount_race_lost").count == 1


def test_a_pending_row_whose_subscription_stopped_being_pro_is_skipped_without_calling_stripe(stripe_standin):
    discount = LoyaltyDiscountFactory(subscription=SubscriptionFactory(status=SubscriptionStatus.PAST_DUE))

    assert finish_discount(discount_id=discount.pk, actor=TICK) == GrantOutcome.SKIPPED

    discount.refresh_from_db()
    assert discount.status == DiscountStatus.SKIPPED and stripe_standin.requests == []
    assert finish_discount(discount_id=discount.pk, actor=TICK) == GrantOutcome.NOT_PENDING


# --- the clock ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pro_started_at",
    [
        datetime(2024, 5, 31, 12, 0, tzinfo=UTC),  # due during the first run
        datetime(2024, 6, 1, 0, 0, 0, tzinfo=UTC),  # due between the two runs
    ],
    ids=["due-before-midnight", "due-at-midnight"],
)
def test_runs_either_side_of_a_month_boundary_create_one_code(stripe_standin, pro_started_at):
    subscription = SubscriptionFactory(pro_started_at=pro_started_at)

    with time_machine.travel(datetime(2025, 5, 31, 23, 59, 59, tzinfo=UTC), tick=False):
        first = tick()
    with time_machine.travel(datetime(2025, 6, 1, 0, 0, 1, tzinfo=UTC), tick=False):
        second = tick()

    assert first["applied"] + second["applied"] == 1
    assert len(stripe_standin.promotion_codes) == 1 and len(creates(stripe_standin)) == 1
    assert LoyaltyDiscount.objects.get().status == DiscountStatus.APPLIED and len(mail.outbox) == 1
    # The key is made of ids only: the same whichever side of midnight it is built on.
    assert creates(stripe_standin)[0].headers["Idempotency-Key"] == stripe_promotion_code_key(
        LoyaltyDiscount.objects.select_related("subscription").get()
    )
    assert "2025" not in creates(stripe_standin)[0].headers["Idempotency-Key"]
    assert subscription.stripe_subscription_id in creates(stripe_standin)[0].headers["Idempotency-Key"]


def test_a_leap_day_start_has_its_first_anniversary_on_28_february(stripe_standin):
    SubscriptionFactory(pro_started_at=datetime(2024, 2, 29, 9, 0, tzinfo=UTC))

    with time_machine.travel(datetime(2025, 2, 28, 8, 59, 59, tzinfo=UTC), tick=False):
        assert tick()["created"] == 0
    with time_machine.travel(datetime(2025, 2, 28, 9, 0, 0, tzinfo=UTC), tick=False):
        assert tick()["applied"] == 1
    with time_machine.travel(datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC), tick=False):
        assert tick()["created"] == 0
    assert len(stripe_standin.promotion_codes) == 1


# --- crashes: a real process killed after Stripe committed and before our UPDATE ---------------


CRASHING_TICK = """
import django
django.setup()
from core.actors import SystemActor
from loyalty.services import apply_loyalty
apply_loyalty(actor=SystemActor("task:apply_loyalty:doomed"))
"""


def _crash_after_stripe_commits(standin) -> None:
    """Run a tick in a child process; the stand-in creates the code, then holds the response; the
    child is SIGKILLed while it waits. Its pending row and its attempt are committed, the code
    exists at Stripe, the applied UPDATE never happens."""
    # Held far longer than the test can take to notice the commit, so the kill always lands first.
    standin.add_fault(method="POST", path=CREATE, mode="timeout_after_commit", delay=120.0)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "STRIPE_API_BASE": django_settings.STRIPE_API_BASE,
        "STRIPE_SECRET_KEY": django_settings.STRIPE_SECRET_KEY,
        "STRIPE_TIMEOUT_SECONDS": "300",
    }
    child = subprocess.Popen([sys.executable, "-c", CRASHING_TICK], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 300  # a child process starting Django on a busy machine
        while not any(r.status == 200 for r in creates(standin)):
            assert child.poll() is None, "the child tick ended before Stripe answered"
            assert time.monotonic() < deadline, "the child tick never reached Stripe"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    discount = LoyaltyDiscount.objects.get()
    assert discount.status == DiscountStatus.PENDING and discount.attempts == 1
    assert len(standin.promotion_codes) == 1


def test_crash_after_the_stripe_call_then_ticks_an_hour_and_two_days_later_still_one_code(stripe_standin):
    SubscriptionFactory()
    _crash_after_stripe_commits(stripe_standin)
    crashed_at = timezone.now()

    with time_machine.travel(crashed_at + timedelta(hours=1)):
        an_hour_later = tick()
    with time_machine.travel(crashed_at + timedelta(days=2)):
        two_days_later = tick()

    # an hour later: the stale pending row is resumed with the same key; Stripe replays its code
    assert an_hour_later["resumed"] == an_hour_later["applied"] == 1
    keys = {r.headers["Idempotency-Key"] for r in creates(stripe_standin)}
    assert len(creates(stripe_standin)) == 2 and len(keys) == 1
    # two days later: nothing is pending, the pre-flight sees the applied row
    assert two_days_later["applied"] == two_days_later["created"] == two_days_later["resumed"] == 0
    assert len(stripe_standin.promotion_codes) == 1 and len(creates(stripe_standin)) == 2
    [code] = stripe_standin.promotion_codes.values()
    assert LoyaltyDiscount.objects.get().stripe_promotion_code_id == code["id"]
    assert len(mail.outbox) == 1


def test_crash_then_a_tick_past_stripes_idempotency_window_looks_the_code_up(stripe_standin):
    SubscriptionFactory()
    _crash_after_stripe_commits(stripe_standin)

    with time_machine.travel(timezone.now() + timedelta(days=2)):
        report = tick()

    # The key has expired at Stripe: the tick found the code by its string instead of creating one.
    assert report["resumed"] == report["applied"] == 1
    assert len(creates(stripe_standin)) == 1
    lookups = stripe_standin.requests_to("GET", CREATE)
    assert [r.query["code"] for r in lookups] == [[LoyaltyDiscount.objects.get().code]]
    [code] = stripe_standin.promotion_codes.values()
    assert LoyaltyDiscount.objects.get().stripe_promotion_code_id == code["id"]
    assert len(mail.outbox) == 1


def test_past_the_window_a_code_of_ours_deactivated_at_stripe_is_not_replaced(stripe_standin):
    SubscriptionFactory()
    _crash_after_stripe_commits(stripe_standin)
    [code] = stripe_standin.promotion_codes.values()
    code["active"] = False  # someone deactivated it in Stripe's dashboard meanwhile

    with time_machine.travel(timezone.now() + timedelta(days=2)):
        report = tick()

    discount = LoyaltyDiscount.objects.get()
    assert report["failed"] == 1 and discount.status == DiscountStatus.PENDING
    assert "own_code_inactive" in discount.last_error
    assert BeaconCount.objects.get(kind="loyalty_stripe_rejected").count == 1
    assert len(stripe_standin.promotion_codes) == 1 and len(creates(stripe_standin)) == 1


def test_a_pending_row_is_not_taken_over_while_its_attempt_is_fresh(stripe_standin):
    discount = LoyaltyDiscountFactory()
    LoyaltyDiscount.objects.filter(pk=discount.pk).update(attempts=1, last_attempt_at=timezone.now())

    assert tick()["resumed"] == 0
    with time_machine.travel(timezone.now() + RESUME_AFTER + timedelta(seconds=5)):
        assert tick()["resumed"] == 1
    discount.refresh_from_db()
    assert discount.status == DiscountStatus.APPLIED and discount.attempts == 2


# --- Stripe's answers ----------------------------------------------------------------------------


def test_a_missing_coupon_leaves_the_row_pending_with_the_error_and_a_beacon_until_fixed(stripe_standin):
    SubscriptionFactory()
    del stripe_standin.coupons[DEFAULT_COUPON_ID]

    report = tick()

    discount = LoyaltyDiscount.objects.get()
    assert report["failed"] == 1 and discount.status == DiscountStatus.PENDING
    assert "resource_missing" in discount.last_error and "No such coupon" in discount.last_error
    assert BeaconCount.objects.get(kind="loyalty_stripe_rejected").count == 1
    assert stripe_standin.promotion_codes == {} and mail.outbox == []
    assert len(creates(stripe_standin)) == 1  # a 4xx is not retried by the SDK

    # the configuration is fixed at Stripe; the next tick after the idle time heals the row
    stripe_standin.coupons[DEFAULT_COUPON_ID] = {"id": DEFAULT_COUPON_ID, "object": "coupon", "percent_off": 10}
    with time_machine.travel(timezone.now() + RESUME_AFTER + timedelta(minutes=1)):
        healed = tick()

    discount.refresh_from_db()
    assert healed["resumed"] == healed["applied"] == 1
    assert discount.status == DiscountStatus.APPLIED and discount.last_error == ""
    assert len(stripe_standin.promotion_codes) == 1 and len(mail.outbox) == 1
    assert len({r.headers["Idempotency-Key"] for r in creates(stripe_standin)}) == 1


def test_if_stripe_replayed_the_4xx_for_its_key_the_row_heals_once_the_key_has_expired(stripe_standin):
    # The stricter reading of Stripe's rule: the refusal itself is kept and replayed for 24 hours.
    stripe_standin.keep_refusals = True
    SubscriptionFactory()
    del stripe_standin.coupons[DEFAULT_COUPON_ID]
    assert tick()["failed"] == 1
    stripe_standin.coupons[DEFAULT_COUPON_ID] = {"id": DEFAULT_COUPON_ID, "object": "coupon", "percent_off": 10}

    with time_machine.travel(timezone.now() + RESUME_AFTER + timedelta(minutes=1)):
        assert tick()["failed"] == 1  # the same key: the kept 400 again
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert tick()["applied"] == 1  # the key is gone: looked up (nothing), then created

    assert len(stripe_standin.promotion_codes) == 1 and len(mail.outbox) == 1
    assert [r.status for r in creates(stripe_standin)] == [400, 400, 200]
    # counters are per hour and the two refusals are minutes apart: they may straddle an hour
    assert BeaconCount.objects.filter(kind="loyalty_stripe_rejected").aggregate(n=Sum("count"))["n"] == 2


def test_5xx_are_retried_by_the_sdk_with_the_same_key(stripe_standin):
    SubscriptionFactory()
    stripe_standin.add_fault(method="POST", path=CREATE, mode="error_500", times=2)

    assert tick()["applied"] == 1

    assert [r.status for r in creates(stripe_standin)] == [500, 500, 200]
    assert len({r.headers["Idempotency-Key"] for r in creates(stripe_standin)}) == 1
    assert len(stripe_standin.promotion_codes) == 1 and len(mail.outbox) == 1


def test_5xx_that_outlast_the_sdk_retries_leave_the_row_pending_for_the_next_tick(stripe_standin):
    SubscriptionFactory()
    stripe_standin.add_fault(method="POST", path=CREATE, mode="error_500", times=3)

    failed = tick()
    discount = LoyaltyDiscount.objects.get()
    assert failed["failed"] == 1 and discount.status == DiscountStatus.PENDING and "HTTP 500" in discount.last_error
    assert not BeaconCount.objects.filter(kind="loyalty_stripe_rejected").exists()  # transient: no alarm

    with time_machine.travel(timezone.now() + RESUME_AFTER + timedelta(minutes=1)):
        assert tick()["applied"] == 1

    assert len(creates(stripe_standin)) == 4
    assert len({r.headers["Idempotency-Key"] for r in creates(stripe_standin)}) == 1
    assert len(stripe_standin.promotion_codes) == 1 and len(mail.outbox) == 1


def test_a_key_still_in_use_at_stripe_leaves_the_row_pending_and_the_next_tick_makes_one_code(stripe_standin):
    # 409 idempotency_key_in_use: Stripe executed nothing for this attempt; the SDK retries it, and if
    # the key is still busy after that, the row waits for the next tick and the same key.
    SubscriptionFactory()
    in_use = {"error": {"type": "idempotency_error", "code": "idempotency_key_in_use", "message": "in use"}}
    stripe_standin.add_fault(method="POST", path=CREATE, mode="status", status=409, body=in_use, times=3)

    assert tick()["failed"] == 1
    discount = LoyaltyDiscount.objects.get()
    assert discount.status == DiscountStatus.PENDING and "idempotency_key_in_use" in discount.last_error
    assert not BeaconCount.objects.filter(kind="loyalty_stripe_rejected").exists()  # transient: no alarm

    with time_machine.travel(timezone.now() + RESUME_AFTER + timedelta(minutes=1)):
        assert tick()["applied"] == 1

    assert len({r.headers["Idempotency-Key"] for r in creates(stripe_standin)}) == 1
    assert len(stripe_standin.promotion_codes) == 1 and len(mail.outbox) == 1


@pytest.mark.parametrize("mode", ["timeout_after_commit", "drop_after_commit", "error_500_after_commit"])
def test_an_answer_lost_after_stripe_committed_is_replayed_for_the_same_key(stripe_standin, settings, mode):
    settings.STRIPE_TIMEOUT_SECONDS = 1.0  # the replay must answer within it, on a busy box too
    SubscriptionFactory()
    stripe_standin.add_fault(method="POST", path=CREATE, mode=mode, delay=2.0)

    assert tick()["applied"] == 1

    assert len(creates(stripe_standin)) == 2
    assert len({r.headers["Idempotency-Key"] for r in creates(stripe_standin)}) == 1
    assert len(stripe_standin.promotion_codes) == 1 and len(mail.outbox) == 1


def test_a_500_stripe_keeps_for_the_key_heals_once_the_key_has_expired(stripe_standin):
    SubscriptionFactory()
    stripe_standin.fail_executions = 1  # Stripe's own 500, kept and replayed for this key

    assert tick()["failed"] == 1
    with time_machine.travel(timezone.now() + RESUME_AFTER + timedelta(minutes=1)):
        assert tick()["failed"] == 1  # same key: the same 500 again; still no code
    assert stripe_standin.promotion_codes == {}
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert tick()["applied"] == 1  # past the window: looked up (nothing), then created

    assert len(stripe_standin.promotion_codes) == 1 and len(mail.outbox) == 1
    assert len({r.headers["Idempotency-Key"] for r in creates(stripe_standin)}) == 1


def test_a_code_already_active_at_stripe_is_recognised_as_ours_not_duplicated(stripe_standin):
    # given a code an earlier attempt made, whose idempotency key Stripe no longer has
    discount = LoyaltyDiscountFactory()
    earlier = stripe_standin.seed_promotion_code(
        code=discount.code,
        customer=discount.subscription.stripe_customer_id,
        metadata={"loyalty_discount_id": str(discount.pk)},
    )

    assert finish_discount(discount_id=discount.pk, actor=TICK) == GrantOutcome.APPLIED

    # Stripe refused a second active code with the string; the lookup found ours
    assert [r.status for r in creates(stripe_standin)] == [400]
    assert len(stripe_standin.promotion_codes) == 1
    assert LoyaltyDiscount.objects.get().stripe_promotion_code_id == earlier["id"]


def test_an_active_code_with_our_string_that_another_row_made_is_an_error_not_a_grant(stripe_standin):
    # given last year's subscription's code, revoked here but still active at Stripe
    discount = LoyaltyDiscountFactory()
    stripe_standin.seed_promotion_code(
        code=discount.code, customer=discount.subscription.stripe_customer_id, metadata={"loyalty_discount_id": "999"}
    )

    assert finish_discount(discount_id=discount.pk, actor=TICK) == GrantOutcome.FAILED

    discount.refresh_from_db()
    assert discount.status == DiscountStatus.PENDING and "duplicate_value" in discount.last_error
    assert BeaconCount.objects.get(kind="loyalty_stripe_rejected").count == 1
    assert len(stripe_standin.promotion_codes) == 1


# --- the email ---------------------------------------------------------------------------------


def test_the_email_is_sent_once_however_often_it_is_asked_for(stripe_standin):
    SubscriptionFactory()
    tick()
    discount = LoyaltyDiscount.objects.get()

    assert send_loyalty_email(discount_id=discount.pk) is False
    assert send_loyalty_email(discount_id=discount.pk) is False

    assert len(mail.outbox) == 1
    assert Claim.objects.get(key=email_claim_key(discount.pk)).completed_at is not None


def test_an_email_lost_with_its_on_commit_is_sent_by_a_later_tick(stripe_standin):
    # given an applied row whose on_commit enqueue died with its process (no claim at all)
    discount = LoyaltyDiscountFactory()
    applied_at = timezone.now()
    with time_machine.travel(applied_at):
        from audit.transitions import apply_transition

        apply_transition(instance=discount, transition="apply", actor=TICK, changes={"applied_at": applied_at})
    assert mail.outbox == []

    assert tick()["emails_requeued"] == 0  # within the grace period the on_commit may still come
    with time_machine.travel(applied_at + timedelta(minutes=11)):
        assert tick()["emails_requeued"] == 1
        assert tick()["emails_requeued"] == 0

    assert len(mail.outbox) == 1


def test_a_discount_revoked_before_its_email_went_out_is_not_advertised(stripe_standin):
    discount = LoyaltyDiscountFactory(status=DiscountStatus.REVOKED)
    assert send_loyalty_email(discount_id=discount.pk) is False
    assert mail.outbox == []


def test_a_failed_send_releases_the_claim_so_the_sweeper_can_retry(stripe_standin, settings):
    settings.EMAIL_BACKEND = "tests.loyalty.failing_mail.FailingBackend"
    discount = LoyaltyDiscountFactory(status=DiscountStatus.APPLIED)
    with pytest.raises(ConnectionError):
        send_loyalty_email(discount_id=discount.pk)
    assert not Claim.objects.filter(key=email_claim_key(discount.pk)).exists()

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert send_loyalty_email(discount_id=discount.pk) is True
    assert len(mail.outbox) == 1


# --- revocation ---------------------------------------------------------------------------------


def test_revoking_an_applied_discount_deactivates_its_code_at_stripe_once(stripe_standin):
    SubscriptionFactory()
    tick()
    discount = LoyaltyDiscount.objects.get()

    revoke_discount(discount_id=discount.pk, actor=TICK, reason="fraud")

    discount.refresh_from_db()
    assert discount.status == DiscountStatus.REVOKED and discount.stripe_closed_at is not None
    assert stripe_standin.promotion_codes[discount.stripe_promotion_code_id]["active"] is False
    [deactivation] = stripe_standin.requests_to("POST", r"^/v1/promotion_codes/promo_")
    assert deactivation.headers["Idempotency-Key"] == f"loyalty:deactivate:{discount.stripe_promotion_code_id}"
    assert deactivation.body == {"active": "false"}
    # never re-granted to the same subscription, and the sweep has nothing left to close
    report = tick()
    assert report["created"] == 0 and report["codes_closed"] == 0


def test_a_lost_deactivation_is_swept_by_the_next_tick(stripe_standin):
    SubscriptionFactory()
    tick()
    discount = LoyaltyDiscount.objects.get()
    stripe_standin.add_fault(method="POST", path=r"^/v1/promotion_codes/promo_", mode="error_500", times=3)

    revoke_discount(discount_id=discount.pk, actor=TICK)
    discount.refresh_from_db()
    assert discount.stripe_closed_at is None and "HTTP 500" in discount.last_error
    assert stripe_standin.promotion_codes[discount.stripe_promotion_code_id]["active"] is True

    assert tick()["codes_closed"] == 1
    discount.refresh_from_db()
    assert discount.stripe_closed_at is not None
    assert stripe_standin.promotion_codes[discount.stripe_promotion_code_id]["active"] is False


def test_revoking_a_pending_row_closes_the_code_a_crashed_attempt_made(stripe_standin):
    SubscriptionFactory()
    _crash_after_stripe_commits(stripe_standin)
    discount = LoyaltyDiscount.objects.get()

    revoke_discount(discount_id=discount.pk, actor=TICK, expected_status=DiscountStatus.PENDING)

    [code] = stripe_standin.promotion_codes.values()
    assert code["active"] is False
    discount.refresh_from_db()
    assert discount.stripe_closed_at is not None and discount.stripe_promotion_code_id == code["id"]
