"""The "Loyalty Bonus" email: sent once per discount, after the applied transition committed.

Safety: the winner of pending -> applied schedules it on commit (a lost race schedules nothing); the
send itself is claimed by discount id (`INSERT ... ON CONFLICT`), so a redelivered task, the sweeper
and a second worker cannot send it twice. The claim has a lease: a worker that died before sending
does not block the email for ever; the apply_loyalty tick re-enqueues applied rows whose claim was
never completed (a lost on_commit, a failed send).
"""

from datetime import timedelta

import structlog
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from core.claims import claimed
from core.enqueue import enqueue
from loyalty.keys import email_claim_key
from loyalty.models import DiscountStatus, LoyaltyDiscount
from loyalty.selectors import applied_discounts_without_email
from loyalty.task_names import SEND_LOYALTY_EMAIL

logger = structlog.get_logger(__name__)

EMAIL_CLAIM_LEASE = timedelta(minutes=15)
RESEND_AFTER = timedelta(minutes=10)  # the on_commit enqueue had its chance
TEMPLATE_DIR = "loyalty/email"


def send_loyalty_email(*, discount_id: int) -> bool:
    """Send the email for an applied discount unless someone already has (or is doing it)."""
    discount = LoyaltyDiscount.objects.select_related("user").get(pk=discount_id)
    if discount.status != DiscountStatus.APPLIED:
        return False  # revoked before the email went out: do not advertise a dead code
    with claimed(email_claim_key(discount.pk), lease=EMAIL_CLAIM_LEASE) as claim:
        if not claim.won:
            return False
        if not discount.user.email:
            logger.warning("loyalty_email_no_address", discount_id=discount.pk, user_id=discount.user_id)
            return False  # completing the claim: there is nobody to write to
        _message(discount).send()
    logger.info("loyalty_email_sent", discount_id=discount.pk, user_id=discount.user_id)
    return True


def resend_missing_emails(*, limit: int) -> int:
    ids = list(
        applied_discounts_without_email(now=timezone.now(), grace=RESEND_AFTER, limit=limit).values_list(
            "pk", flat=True
        )
    )
    for discount_id in ids:
        enqueue(SEND_LOYALTY_EMAIL, discount_id)
    return len(ids)


def _message(discount: LoyaltyDiscount) -> EmailMultiAlternatives:
    context = {
        "user": discount.user,
        "code": discount.code,
        "anniversary": discount.anniversary,
        "years": discount.anniversary,
    }
    subject = render_to_string(f"{TEMPLATE_DIR}/loyalty_bonus_subject.txt", context).strip()
    body = render_to_string(f"{TEMPLATE_DIR}/loyalty_bonus.txt", context)
    message = EmailMultiAlternatives(subject, body, settings.DEFAULT_FROM_EMAIL, [discount.user.email])
    message.attach_alternative(render_to_string(f"{TEMPLATE_DIR}/loyalty_bonus.html", context), "text/html")
    return message
