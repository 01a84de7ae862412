from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from core.currencies import to_minor
from ledger.models import AccountKind, Transfer, TransferKind
from ledger.services import account_for, post_transfer
from payouts.models import Payout, PayoutStatus
from payouts.selectors import available_balance
from payouts.services import books
from tests.factories.affiliates import AffiliateFactory, CommissionFactory

# Statuses whose current attempt holds a reservation, and those whose hold was resolved.
HOLDING = frozenset({PayoutStatus.REQUESTED, PayoutStatus.APPROVED, PayoutStatus.PROCESSING})
RELEASED = frozenset({PayoutStatus.REJECTED, PayoutStatus.FAILED, PayoutStatus.CANCELLED})


def post_earned(commission) -> Transfer:
    """The commission's COMMISSION_EARNED transfer, exactly as the approval posts it (same id,
    accounts, amount, reference): a factory post and a service post are one idempotent transfer."""
    return post_transfer(
        transfer_id=f"commission:{commission.pk}:earn",
        kind=TransferKind.COMMISSION_EARNED,
        debit=account_for(kind=AccountKind.COMMISSION_EXPENSE, currency=commission.currency),
        credit=books.payable_account(commission.affiliate_id, commission.currency),
        amount=to_minor(Decimal(commission.amount), commission.currency),
        reference=f"affiliates.commission:{commission.pk}",
    )


def post_reversed(commission, amount: Decimal, cause: str = "refund") -> Transfer:
    """A COMMISSION_REVERSED transfer debiting the affiliate's payable (as refund handling posts
    it): applied unconditionally, it may take the account below zero."""
    return post_transfer(
        transfer_id=f"commission:{commission.pk}:reverse:{cause}",
        kind=TransferKind.COMMISSION_REVERSED,
        debit=books.payable_account(commission.affiliate_id, commission.currency),
        credit=account_for(kind=AccountKind.REFUNDS, currency=commission.currency),
        amount=to_minor(amount, commission.currency),
        reference=f"affiliates.commission:{commission.pk}",
    )


def earned_commission(affiliate, amount: Decimal, currency: str = "EUR", **kwargs):
    """An approved commission with its earn transfer posted: money the affiliate may draw on."""
    commission = CommissionFactory(affiliate=affiliate, amount=amount, currency=currency, status="approved", **kwargs)
    post_earned(commission)
    return commission


def fund_payout(payout: Payout) -> None:
    """Credit the affiliate with whatever its payable lacks to cover `payout` (an adjustment, so
    that no commission row appears in tests that count them)."""
    shortfall = Decimal(payout.amount) - available_balance(affiliate=payout.affiliate, currency=payout.currency)
    if shortfall > 0:
        post_transfer(
            transfer_id=f"test:payout:{payout.pk}:attempt:{payout.attempt}:funding",
            kind=TransferKind.ADJUSTMENT,
            debit=account_for(kind=AccountKind.COMMISSION_EXPENSE, currency=payout.currency),
            credit=books.payable_account(payout.affiliate_id, payout.currency),
            amount=to_minor(shortfall, payout.currency),
        )


def hold_in_books(payout: Payout, *, fund: bool = True) -> None:
    """Give a payout made without the services the books it would have: a reservation for its
    current attempt while it is in review or in flight, posted once paid, voided once rejected,
    failed or cancelled. fund: first cover a shortfall of the affiliate's balance."""
    if fund:
        fund_payout(payout)
    books.reserve_payout(payout)
    if payout.status == PayoutStatus.PAID:
        books.post_payout(payout)
    elif payout.status in RELEASED:
        books.void_payout_reservation(payout)


class PayoutFactory(factory.django.DjangoModelFactory):
    """status is protected: pass status="approved" etc. to the constructor (no transition, no audit row).

    The payout gets its books (hold_in_books): reserved while requested / approved / processing,
    posted when paid, voided when rejected / failed / cancelled; the affiliate is credited with a
    shortfall first, so a payout's own money never depends on the test's funding. Pass
    books=False for a payout with no ledger entries, books="unfunded" to reserve from the
    affiliate's existing balance only (insufficient_balance if it does not cover it)."""

    class Meta:
        model = Payout
        skip_postgeneration_save = True

    affiliate = factory.SubFactory(AffiliateFactory)
    requested_by = factory.LazyAttribute(lambda p: p.affiliate.user)  # as the affiliate's own request
    amount = Decimal("310.00")
    currency = "EUR"
    status = PayoutStatus.REQUESTED
    # As the approve writes it: a payout made past review carries its affiliate's recipient then.
    approved_recipient_id = factory.LazyAttribute(
        lambda p: None if p.status in (PayoutStatus.REQUESTED, PayoutStatus.REJECTED) else p.affiliate.wise_recipient_id
    )

    @factory.post_generation
    def books(obj, create, extracted, **kwargs):
        if create and extracted is not False:
            hold_in_books(obj, fund=extracted != "unfunded")


def funded_affiliate(amount: Decimal = Decimal("1000.00"), **affiliate_kwargs):
    """An affiliate with `amount` of approved commissions to draw on, in the payouts' currency
    (EUR), posted in the books as the approval posts it."""
    affiliate = AffiliateFactory(**affiliate_kwargs)
    earned_commission(affiliate, amount, "EUR")
    return affiliate


def long_ago(minutes: int = 24 * 60):
    return timezone.now() - timedelta(minutes=minutes)
