"""A commission's postings in the books (ledger): earned on approval, reversed on refund or a lost dispute.

Transfer ids derive from the commission id only (plus, for a reversal, its cause and the
cumulative amount reversed after it), so a replayed posting returns the original (the ledger's
UNIQUE id) and the backfill migration produces the same ids as the live code.
"""

from affiliates.models import Commission
from ledger.models import AccountKind, Transfer, TransferKind
from ledger.services import AccountRef, post_transfer


def earn_id(commission_id: int) -> str:
    return f"commission:{commission_id}:earn"


def reverse_id(commission_id: int, cause: str) -> str:
    return f"commission:{commission_id}:reverse:{cause}"


def reference(commission_id: int) -> str:
    return f"affiliates.commission:{commission_id}"


# By identity, not read first: the ledger looks both accounts up inside the posting's one statement.
def payable_account(commission: Commission) -> AccountRef:
    return AccountRef(
        kind=AccountKind.AFFILIATE_PAYABLE, owner_id=str(commission.affiliate_id), currency=commission.currency
    )


def post_earned(*, commission: Commission, amount_minor: int) -> Transfer:
    """COMMISSION_EARNED: debit the platform's commission expense, credit the affiliate's payable."""
    return post_transfer(
        transfer_id=earn_id(commission.pk),
        debit=AccountRef(kind=AccountKind.COMMISSION_EXPENSE, currency=commission.currency),
        credit=payable_account(commission),
        amount=amount_minor,
        kind=TransferKind.COMMISSION_EARNED,
        reference=reference(commission.pk),
    )


def post_reversed(*, commission: Commission, amount_minor: int, cause: str) -> Transfer:
    """COMMISSION_REVERSED: debit the affiliate's payable (may go below zero after a payout: a
    clawback carried forward), credit the platform's refunds account."""
    return post_transfer(
        transfer_id=reverse_id(commission.pk, cause),
        debit=payable_account(commission),
        credit=AccountRef(kind=AccountKind.REFUNDS, currency=commission.currency),
        amount=amount_minor,
        kind=TransferKind.COMMISSION_REVERSED,
        reference=reference(commission.pk),
    )
