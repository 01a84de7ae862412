"""Every write to the books: accounts, single-phase transfers, reservations and their resolution.

The safety layers, in the order a posting meets them:
1. validation before any write: an int amount > 0 (bool, Decimal and float refused), a known
   currency, both accounts in it, a well-formed id; a refusal writes nothing;
2. database uniqueness: the transfer id is the primary key and a pending transfer's resolution is
   UNIQUE on pending_id. The insert runs in a savepoint; the loser of a race (or a replay) catches
   the IntegrityError and reads the winner: same fields -> the original is returned, different
   fields -> ValidationError, the other resolution of a pending transfer -> Conflict;
3. one guarded UPDATE for a debit of an enforce_balance account (TigerBeetle's
   debits_must_not_exceed_credits), in the same transaction as the insert, so the check and the
   debit cannot be split by a concurrent reservation (READ COMMITTED re-checks the WHERE on the
   row a concurrent writer committed). Rowcount 0 = insufficient balance, and the insert rolls
   back with it;
4. account rows are updated in primary-key order, so two postings over the same pair of accounts
   never wait on each other in opposite orders (no deadlock);
5. the immutability trigger (migration 0002): no UPDATE or DELETE of a transfer, ever.
"""

from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import F

from core import currencies
from core.errors import BusinessRuleViolation, Conflict, NotFound, ValidationError
from core.transactions import atomic
from ledger.errors import LedgerErrorCode
from ledger.models import (
    ACCOUNT_POLICIES,
    OVERDRAFT_KINDS,
    Account,
    AccountKind,
    KindPolicy,
    Transfer,
    TransferFlag,
    TransferKind,
)

MAX_AMOUNT = 2**63 - 1  # PostgreSQL bigint
ID_MAX_LENGTH = 255
COMPARED_FIELDS = (
    "debit_account_id",
    "credit_account_id",
    "amount",
    "currency",
    "kind",
    "flag",
    "pending_id",
    "reference",
)


@dataclass(frozen=True)
class _Spec:
    """A transfer to insert, validated."""

    id: str
    debit: Account
    credit: Account
    amount: int
    kind: str
    flag: str
    reference: str
    pending: Transfer | None = None

    def columns(self) -> dict[str, object]:
        return {
            "debit_account_id": self.debit.pk,
            "credit_account_id": self.credit.pk,
            "amount": self.amount,
            "currency": self.debit.currency,
            "kind": self.kind,
            "flag": self.flag,
            "pending_id": self.pending.pk if self.pending else None,
            "reference": self.reference,
        }


@dataclass
class _Move:
    """Deltas to the balance columns of one tracked account; `guard` = the debit that must fit."""

    account: Account
    deltas: dict[str, int] = field(default_factory=dict)
    guard: int | None = None


def account_for(*, kind: str, owner_id: str = "", currency: str) -> Account:
    """The account of (kind, owner, currency), created on first use.

    Race-safe get-or-create: SELECT; on a miss INSERT ... ON CONFLICT DO NOTHING, then SELECT
    again, so two first postings for a new affiliate create one account (UNIQUE decides)."""
    code = currencies.normalize(currency)
    policy = _policy(kind, owner_id)
    lookup = {"kind": kind, "owner_id": owner_id, "currency": code}
    account = Account.objects.filter(**lookup).first()
    if account is None:
        flags = {"tracks_balance": policy.tracks_balance, "enforce_balance": policy.enforce_balance}
        Account.objects.bulk_create([Account(**lookup, **flags)], ignore_conflicts=True)
        account = Account.objects.get(**lookup)
    return account


def post_transfer(
    *, transfer_id: str, debit: Account, credit: Account, amount: int, kind: str, reference: str = ""
) -> Transfer:
    """A single-phase transfer: posted at once on both accounts.

    A debit of an enforce_balance account is guarded (insufficient_balance) unless `kind` is a
    reversal or a late payout (OVERDRAFT_KINDS: money that already went out), which may take it below zero.
    Safety: validation, UNIQUE id (replay returns the original), guarded UPDATE, pk lock order."""
    spec = _new_spec(transfer_id, debit, credit, amount, kind, reference, TransferFlag.PLAIN)
    return _insert_and_move(spec)


def reserve(
    *, transfer_id: str, debit: Account, credit: Account, amount: int, kind: str, reference: str = ""
) -> Transfer:
    """A pending transfer (two-phase, step one): the amount is held in debits_pending /
    credits_pending until post_pending or void_pending resolves it.

    On an enforce_balance debit account this is ONE guarded statement: the reservation succeeds
    only if credits_posted - debits_posted - debits_pending >= amount (else
    BusinessRuleViolation insufficient_balance with `available`); while a clawback holds the
    account below zero, every reservation is refused. Same safety layers as post_transfer."""
    spec = _new_spec(transfer_id, debit, credit, amount, kind, reference, TransferFlag.PENDING)
    return _insert_and_move(spec)


def post_pending(*, pending_id: str, transfer_id: str | None = None, amount: int | None = None) -> Transfer:
    """Post a pending transfer: its hold becomes a posting on both accounts.

    `amount` defaults to the pending amount; a smaller amount is a partial post (TigerBeetle's
    rule): that much is posted and the rest released. More is refused. The resolution is a new
    transfer (id defaults to "<pending_id>:post") whose pending_id is UNIQUE: posting twice
    returns the first post; posting a voided transfer raises Conflict."""
    pending = _pending(pending_id)
    post_amount = pending.amount if amount is None else _checked_amount(amount)
    if post_amount > pending.amount:
        raise ValidationError(
            f"cannot post {post_amount}: the pending transfer holds {pending.amount}",
            code=LedgerErrorCode.EXCEEDS_PENDING_AMOUNT,
            pending_id=pending.pk,
            pending_amount=pending.amount,
        )
    spec = _resolution_spec(pending, transfer_id, TransferFlag.POST_PENDING, post_amount)
    return _insert_and_move(spec)


def void_pending(*, pending_id: str, transfer_id: str | None = None) -> Transfer:
    """Void a pending transfer: its hold is released on both accounts, nothing is posted.

    The resolution is a new transfer (id defaults to "<pending_id>:void") whose pending_id is
    UNIQUE: voiding twice returns the first void; voiding a posted transfer raises Conflict."""
    pending = _pending(pending_id)
    spec = _resolution_spec(pending, transfer_id, TransferFlag.VOID_PENDING, pending.amount)
    return _insert_and_move(spec)


# --- validation --------------------------------------------------------------------------------


def _policy(kind: str, owner_id: str) -> KindPolicy:
    policy = ACCOUNT_POLICIES.get(kind)
    if policy is None:
        raise ValidationError(f"unknown account kind {kind!r}", code=LedgerErrorCode.INVALID_KIND, kind=str(kind))
    if not isinstance(owner_id, str) or len(owner_id) > 64 or bool(owner_id) != policy.owned:
        need = "needs an owner_id" if policy.owned else "is a platform account: owner_id must be blank"
        raise ValidationError(
            f"{AccountKind(kind).label} {need}", code=LedgerErrorCode.INVALID_ACCOUNT, owner_id=str(owner_id)
        )
    return policy


def _checked_amount(amount: object) -> int:
    # type() rather than isinstance(): bool is an int subclass, and a Decimal or float here means
    # the caller skipped to_minor().
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
        raise ValidationError(
            f"amount must be an int of minor units > 0, not {amount!r}",
            code=LedgerErrorCode.INVALID_AMOUNT,
            amount=repr(amount),
        )
    return amount


def _checked_id(transfer_id: object) -> str:
    if not isinstance(transfer_id, str) or not transfer_id.strip() or len(transfer_id) > ID_MAX_LENGTH:
        raise ValidationError(
            f"transfer id must be a non-blank string of at most {ID_MAX_LENGTH} characters",
            code=LedgerErrorCode.INVALID_TRANSFER_ID,
            transfer_id=repr(transfer_id)[:300],
        )
    return transfer_id


def _checked_kind(kind: object) -> str:
    if kind not in TransferKind.values:
        raise ValidationError(f"unknown transfer kind {kind!r}", code=LedgerErrorCode.INVALID_KIND, kind=str(kind))
    return str(kind)


def _accounts(debit: Account, credit: Account) -> tuple[Account, Account]:
    """Both accounts as stored (their flags decide the guard, not an instance a caller may have
    altered), in one query; same currency, a known one, and two different accounts."""
    if not isinstance(debit, Account) or not isinstance(credit, Account) or debit.pk is None or credit.pk is None:
        raise ValidationError("debit and credit must be saved ledger accounts", code=LedgerErrorCode.INVALID_ACCOUNT)
    if debit.pk == credit.pk:
        raise ValidationError("a transfer needs two different accounts", code=LedgerErrorCode.SAME_ACCOUNT)
    stored = Account.objects.in_bulk([debit.pk, credit.pk])
    if len(stored) != 2:
        raise NotFound("ledger account not found", code=LedgerErrorCode.INVALID_ACCOUNT)
    debit, credit = stored[debit.pk], stored[credit.pk]
    if debit.currency != credit.currency:
        raise ValidationError(
            f"cannot move {debit.currency} into a {credit.currency} account",
            code=LedgerErrorCode.CURRENCY_MISMATCH,
            debit_currency=debit.currency,
            credit_currency=credit.currency,
        )
    currencies.normalize(debit.currency)
    return debit, credit


def _new_spec(
    transfer_id: str, debit: Account, credit: Account, amount: int, kind: str, reference: str, flag: str
) -> _Spec:
    transfer_id, amount, kind = _checked_id(transfer_id), _checked_amount(amount), _checked_kind(kind)
    if not isinstance(reference, str) or len(reference) > 255:
        raise ValidationError(
            "reference must be a string of at most 255 characters", code=LedgerErrorCode.INVALID_REFERENCE
        )
    debit, credit = _accounts(debit, credit)
    return _Spec(transfer_id, debit, credit, amount, kind, flag, reference)


def _pending(pending_id: str) -> Transfer:
    transfer = (
        Transfer.objects.select_related("debit_account", "credit_account").filter(pk=_checked_id(pending_id)).first()
    )
    if transfer is None:
        raise NotFound(f"no transfer {pending_id!r}", code=LedgerErrorCode.TRANSFER_NOT_FOUND, pending_id=pending_id)
    if transfer.flag != TransferFlag.PENDING:
        raise ValidationError(
            f"transfer {pending_id!r} is not pending ({transfer.flag})", code=LedgerErrorCode.NOT_PENDING
        )
    return transfer


def _resolution_spec(pending: Transfer, transfer_id: str | None, flag: str, amount: int) -> _Spec:
    suffix = "post" if flag == TransferFlag.POST_PENDING else "void"
    resolution_id = _checked_id(transfer_id if transfer_id is not None else f"{pending.pk}:{suffix}")
    return _Spec(
        resolution_id,
        pending.debit_account,
        pending.credit_account,
        amount,
        pending.kind,
        flag,
        pending.reference,
        pending=pending,
    )


# --- the write ---------------------------------------------------------------------------------


def _insert_and_move(spec: _Spec) -> Transfer:
    with atomic():
        try:
            with transaction.atomic():  # savepoint: a lost race leaves the outer transaction usable
                transfer = Transfer.objects.create(id=spec.id, **spec.columns())
        except IntegrityError as exc:
            return _already_recorded(spec, exc)
        for move in sorted(_moves(spec), key=lambda m: m.account.pk):
            _apply(move, spec)
        return transfer


def _already_recorded(spec: _Spec, exc: IntegrityError) -> Transfer:
    """The insert lost to a committed row: the same id (replay) or another resolution of the same
    pending transfer. READ COMMITTED: this new statement sees the winner's row."""
    existing = Transfer.objects.filter(pk=spec.id).first()
    if existing is not None:
        differs = [name for name, value in spec.columns().items() if getattr(existing, name) != value]
        if differs:
            raise ValidationError(
                "transfer id reused with different fields",
                code=LedgerErrorCode.TRANSFER_ID_REUSED,
                transfer_id=spec.id,
                differs=differs,
            )
        return existing
    pending = spec.pending
    resolution = Transfer.objects.filter(pending_id=pending.pk).first() if pending else None
    if pending is None or resolution is None:
        raise exc
    if resolution.flag == spec.flag and resolution.amount == spec.amount:
        return resolution
    raise Conflict(
        f"pending transfer {pending.pk!r} was already resolved by {resolution.pk!r} ({resolution.flag})",
        code=LedgerErrorCode.PENDING_ALREADY_RESOLVED,
        pending_id=pending.pk,
        resolved_by=resolution.pk,
        resolution=resolution.flag,
        resolved_amount=resolution.amount,
    )


def _moves(spec: _Spec) -> list[_Move]:
    """What the transfer does to each tracked account's columns (TigerBeetle's rules)."""
    held = spec.pending.amount if spec.pending else 0
    debit_deltas, credit_deltas = {
        TransferFlag.PLAIN: ({"debits_posted": spec.amount}, {"credits_posted": spec.amount}),
        TransferFlag.PENDING: ({"debits_pending": spec.amount}, {"credits_pending": spec.amount}),
        TransferFlag.POST_PENDING: (
            {"debits_pending": -held, "debits_posted": spec.amount},
            {"credits_pending": -held, "credits_posted": spec.amount},
        ),
        TransferFlag.VOID_PENDING: ({"debits_pending": -held}, {"credits_pending": -held}),
    }[TransferFlag(spec.flag)]
    # A reservation is always guarded; only a single-phase debit of an overdraft kind (money that
    # already went out) may take the account below zero.
    guarded = spec.debit.enforce_balance and (
        spec.flag == TransferFlag.PENDING or (spec.flag == TransferFlag.PLAIN and spec.kind not in OVERDRAFT_KINDS)
    )
    moves = [
        _Move(spec.debit, debit_deltas, guard=spec.amount if guarded else None),
        _Move(spec.credit, credit_deltas),
    ]
    return [move for move in moves if move.account.tracks_balance]


def _apply(move: _Move, spec: _Spec) -> None:
    rows = Account.objects.filter(pk=move.account.pk)
    if move.guard is not None:
        # ONE statement: UPDATE ... WHERE id = %s AND credits_posted - debits_posted - debits_pending >= amount
        # (written as credits_posted >= debits_posted + debits_pending + amount).
        rows = rows.filter(credits_posted__gte=F("debits_posted") + F("debits_pending") + move.guard)
    if rows.update(**{column: F(column) + delta for column, delta in move.deltas.items()}) == 0:
        available = Account.objects.filter(pk=move.account.pk).values_list(
            F("credits_posted") - F("debits_posted") - F("debits_pending"), flat=True
        )[0]
        raise BusinessRuleViolation(
            f"insufficient balance: {available} available, {move.guard} requested",
            code=LedgerErrorCode.INSUFFICIENT_BALANCE,
            available=available,
            requested=move.guard,
            currency=move.account.currency,
            account_id=move.account.pk,
            transfer_id=spec.id,
        )
