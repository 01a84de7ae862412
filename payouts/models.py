"""Payouts: an affiliate's request for money, a super-admin's review, and its Wise transfer.

Transitions are declarations only (legality, conditions, permission); payouts.services applies
them through audit.transitions, which writes them as one guarded UPDATE.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django_fsm import FSMField, FSMModelMixin, transition

from affiliates.models import Affiliate, KycStatus
from audit.transitions import condition
from core.money import format_money
from payouts.authority import may_review
from payouts.errors import PayoutErrorCode


class PayoutStatus(models.TextChoices):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Wise transfer states (transfers#state-change current_state), as Wise documents the lifecycle:
# incoming_payment_waiting -> processing -> funds_converted -> outgoing_payment_sent, and the
# unhappy path outgoing_payment_sent -> bounced_back -> processing -> cancelled -> funds_refunded.
# bounced_back is NOT final (it may still end in success or in a refund, and a transfer already
# sent can bounce weeks later); only the final failures release the money for a retry.
WISE_PAID_STATES = frozenset({"outgoing_payment_sent"})
WISE_BOUNCED_STATE = "bounced_back"
WISE_FAILED_STATES = frozenset({"funds_refunded", "cancelled", "charged_back"})


@condition(PayoutErrorCode.KYC_NOT_VERIFIED, "The affiliate's KYC is not verified: the payout cannot be approved.")
def kyc_verified(payout: "Payout") -> bool:
    return payout.affiliate.kyc_status == KycStatus.VERIFIED


@condition(
    PayoutErrorCode.WISE_TRANSFER_NOT_SETTLED,
    "This attempt's Wise transfer has not been reported failed: cancel it at Wise first, so a retry cannot pay twice.",
)
def previous_transfer_settled(payout: "Payout") -> bool:
    # The current attempt's own row when it has one (webhooks write there first); a bounce is not
    # a final failure: that transfer may still be paid out.
    attempt = payout.attempts.filter(number=payout.attempt).first() if payout.pk else None
    transfer_id, state = (attempt.wise_transfer_id, attempt.wise_state) if attempt else ("", "")
    transfer_id, state = transfer_id or payout.wise_transfer_id, state or payout.wise_state
    return not transfer_id or state in WISE_FAILED_STATES


def wise_reports_only(payout: models.Model, user: object) -> bool:
    """No person may move a payout this way (a PUT could mark unpaid money paid): only Wise's own
    report, applied by a system actor (whose transitions skip the permission check)."""
    return False


class Payout(FSMModelMixin, models.Model):
    affiliate = models.ForeignKey(Affiliate, on_delete=models.PROTECT, related_name="payouts")
    amount = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))])
    currency = models.CharField(max_length=3, validators=[RegexValidator(r"^[A-Z]{3}$", "ISO 4217 code, e.g. EUR.")])
    status = FSMField(choices=PayoutStatus.choices, default=PayoutStatus.REQUESTED, protected=True)
    # The reviewer's note: written only by a person's review decision (payouts.services.review).
    # What Wise says goes to provider_status, so settling a payout never overwrites the note.
    reason = models.TextField(
        "reviewer's note", blank=True, help_text="Why the reviewer approved, rejected or re-opened this payout."
    )
    # Who asked for the money (the affiliate, or a super-admin on its behalf): never its reviewer
    # (payouts.authority). Null only for rows made by a system job.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # A new attempt (failed -> requested) gets a new Wise customerTransactionId; retries of one
    # attempt reuse it, so Wise creates at most one transfer per attempt.
    attempt = models.PositiveIntegerField(default=1)
    # The affiliate's Wise recipient as the winning approval read it, written in the approve's own
    # guarded UPDATE: the dispatch pays this account only, never the affiliate's live one, so an
    # edit of Affiliate.wise_recipient_id after approval cannot redirect the money. Null: no
    # approval snapshotted it (the dispatch refuses it); "": approved while it had no recipient.
    # The amount needs no snapshot: nothing changes it after the request (its reservation holds it).
    approved_recipient_id = models.CharField(max_length=64, null=True, blank=True, default=None)
    wise_quote_id = models.CharField(max_length=64, blank=True)
    wise_transfer_id = models.CharField(max_length=64, blank=True)
    dispatched_at = models.DateTimeField(
        "sent to Wise at", null=True, blank=True, help_text="When the payment was handed to Wise."
    )
    wise_funded_at = models.DateTimeField("Wise transfer funded at", null=True, blank=True)
    wise_state = models.CharField(max_length=40, blank=True, help_text="Latest transfer state Wise reported.")
    wise_state_at = models.DateTimeField(null=True, blank=True, help_text="When Wise says the transfer reached it.")
    # What the payment provider last said about the current attempt, in its words ("Wise:
    # outgoing_payment_sent at ...", or why the dispatch was refused), written by the settlement
    # (webhook, poller) and the dispatch; never by a reviewer, so the reviewer's note stays theirs.
    provider_status = models.CharField(
        "status at Wise", max_length=500, blank=True, help_text="What Wise last reported about this payment."
    )
    provider_status_at = models.DateTimeField("reported by Wise at", null=True, blank=True)
    # Set when Wise reported money sent for an attempt whose money had been released (a final
    # failure, or a bounce) or for an old attempt after a retry: someone must look at it.
    paid_after_failure_at = models.DateTimeField(
        null=True, blank=True, help_text="Wise paid out after this payout's money had been released."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="payout_status_created"),
            models.Index(fields=["affiliate", "created_at"], name="payout_affiliate_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=Decimal("0")), name="payout_amount_positive"),
            models.CheckConstraint(condition=Q(attempt__gte=1), name="payout_attempt_positive"),
            # One Wise transfer belongs to one payout: a webhook finds exactly one row.
            models.UniqueConstraint(
                fields=["wise_transfer_id"], condition=~Q(wise_transfer_id=""), name="payout_wise_transfer_once"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {format_money(self.amount, self.currency)} ({self.status})"

    @transition(
        field=status,
        source=PayoutStatus.REQUESTED,
        target=PayoutStatus.APPROVED,
        conditions=[kyc_verified],
        permission=may_review,
    )
    def approve(self) -> None:
        pass

    @transition(field=status, source=PayoutStatus.REQUESTED, target=PayoutStatus.REJECTED, permission=may_review)
    def reject(self) -> None:
        pass

    @transition(field=status, source=PayoutStatus.APPROVED, target=PayoutStatus.PROCESSING, permission=may_review)
    def start_processing(self) -> None:
        pass

    @transition(field=status, source=PayoutStatus.APPROVED, target=PayoutStatus.CANCELLED, permission=may_review)
    def cancel(self) -> None:
        pass

    @transition(field=status, source=PayoutStatus.PROCESSING, target=PayoutStatus.PAID, permission=may_review)
    def mark_paid(self) -> None:
        pass

    @transition(field=status, source=PayoutStatus.PROCESSING, target=PayoutStatus.FAILED, permission=may_review)
    def mark_failed(self) -> None:
        pass

    @transition(field=status, source=PayoutStatus.FAILED, target=PayoutStatus.PAID, permission=wise_reports_only)
    def mark_paid_after_failure(self) -> None:
        """Wise reported the current attempt's transfer sent after a final failure: the money went out."""

    @transition(
        field=status,
        source=PayoutStatus.FAILED,
        target=PayoutStatus.REQUESTED,
        conditions=[previous_transfer_settled],
        permission=may_review,
    )
    def retry(self) -> None:
        pass

    @transition(field=status, source=PayoutStatus.CANCELLED, target=PayoutStatus.REQUESTED, permission=may_review)
    def reopen(self) -> None:
        pass


class PayoutAttempt(models.Model):
    """One attempt of a payout at Wise, kept for ever: its transfer's later events (a bounce weeks
    after, a late success after a retry) are recognised and applied to this attempt."""

    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, related_name="attempts")
    number = models.PositiveIntegerField()
    customer_transaction_id = models.CharField(max_length=36, blank=True)
    wise_quote_id = models.CharField(max_length=64, blank=True)
    wise_transfer_id = models.CharField(max_length=64, blank=True)
    wise_state = models.CharField(max_length=40, blank=True, help_text="Latest transfer state Wise reported.")
    wise_state_at = models.DateTimeField(null=True, blank=True, help_text="When Wise says the transfer reached it.")
    dispatched_at = models.DateTimeField(null=True, blank=True)
    funded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["payout", "number"]
        constraints = [
            models.UniqueConstraint(fields=["payout", "number"], name="payout_attempt_once"),
            models.CheckConstraint(condition=Q(number__gte=1), name="payout_attempt_number_positive"),
            # One Wise transfer belongs to one attempt: a webhook finds exactly one row.
            models.UniqueConstraint(
                fields=["wise_transfer_id"], condition=~Q(wise_transfer_id=""), name="payout_attempt_transfer_once"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.payout_id} attempt {self.number}"


class PayoutApproval(models.Model):
    """One super-admin's approval of a payout that needs two (payouts.thresholds), kept for ever:
    the trail of who approved what. It snapshots what it approved (attempt, amount, currency, Wise
    recipient); it counts only while the payout still matches that snapshot, so an approval never
    carries over to a changed amount, a new recipient or a new attempt. Voided (never deleted) when
    the round ends without an approval (a reject) or once it no longer matches."""

    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    attempt = models.PositiveIntegerField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    wise_recipient_id = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True)
    correlation_id = models.CharField(max_length=64, blank=True, help_text="Request or task id.")
    created_at = models.DateTimeField(auto_now_add=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["payout", "created_at", "id"]
        constraints = [
            # One live approval per super-admin and payout: the same person never counts twice.
            models.UniqueConstraint(
                fields=["payout", "approver"], condition=Q(voided_at__isnull=True), name="payout_approval_once"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.payout_id} approved by {self.approver_id} (attempt {self.attempt})"
