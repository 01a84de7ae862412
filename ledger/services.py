"""Every write to the books: accounts, single-phase transfers, reservations and their resolution.

The safety layers, in the order a posting meets them:
1. validation before any write: an int amount > 0 (bool, Decimal and float refused), a known
   currency, both accounts in it, a well-formed id; a refusal writes nothing;
2. database uniqueness: the transfer id is the primary key and a pending transfer's resolution is
   UNIQUE on pending_id. The insert is ONE `INSERT ... ON CONFLICT DO NOTHING RETURNING id` (no
   savepoint, no IntegrityError): no row back means the row exists (a replay, or the loser of a
   race, which waits for the winner to commit), and the loser reads it: same fields -> the
   original is returned, different fields -> ValidationError, the other resolution of a pending
   transfer -> Conflict;
3. one guarded UPDATE for a debit of an enforce_balance account (TigerBeetle's
   debits_must_not_exceed_credits), in the same transaction as the insert, so the check and the
   debit cannot be split by a concurrent reservation (READ COMMITTED re-checks the WHERE on the
   row a concurrent writer committed). Rowcount 0 = insufficient balance, and the insert rolls
   back with it: a guarded posting runs in a savepoint when the caller's transaction is open
   (its only savepoint), so a refusal undoes the refused posting only. An unguarded posting
   cannot be refused after its insert and takes no savepoint;
4. account rows are updated in primary-key order, so two postings over the same pair of accounts
   never wait on each other in opposite orders (no deadlock);
5. the immutability trigger (migration 0002): no UPDATE or DELETE of a transfer, ever.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from core import currencies
from core.errors import BusinessRuleViolation, Conflict, NotFound, ValidationError
from core.transactions import run_exit_hooks
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
# id, the fields a replay is compared on (in _Spec.columns() order), created_at: the parameters follow it.
_TRANSFER_COLUMNS = ", ".join(f'"{name}"' for name in ("id", *COMPARED_FIELDS, "created_at"))
# INSERT ... ON CONFLICT DO NOTHING: any UNIQUE (the id, a resolution's pending_id) -> no row back.
_INSERT_TRANSFER = (
    f'INSERT INTO "ledger_transfer" ({_TRANSFER_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)'
    ' ON CONFLICT DO NOTHING RETURNING "id"'
)
# The same insert with both accounts looked up in the statement (no account -> no row, nothing
# inserted); the casts keep it valid with server-side parameter binding too.
_ACCOUNT_BY_IDENTITY = 'SELECT "id" FROM "ledger_account" WHERE "kind" = %s AND "owner_id" = %s AND "currency" = %s'
_INSERT_BY_REF = (
    f'WITH "debit" AS ({_ACCOUNT_BY_IDENTITY}), "credit" AS ({_ACCOUNT_BY_IDENTITY}), "inserted" AS ('
    f'INSERT INTO "ledger_transfer" ({_TRANSFER_COLUMNS}) SELECT %s::varchar, "debit"."id", "credit"."id",'
    " %s::bigint, %s::varchar, %s::varchar, %s::varchar, %s::varchar, %s::varchar, %s::timestamptz"
    ' FROM "debit", "credit" ON CONFLICT DO NOTHING RETURNING "debit_account_id", "credit_account_id")'
)
# ...plus the tracked account's UPDATE joined to what was inserted: nothing inserted, nothing moved.
_MOVE_INSERTED = (
    ', "moved" AS (UPDATE "ledger_account" SET {sets} FROM "inserted"'
    ' WHERE "ledger_account"."id" = "inserted"."{side}" RETURNING 1)'
)
_BY_REF_RESULT = ' SELECT "debit_account_id", "credit_account_id" FROM "inserted"'
_ACCOUNT_FIELDS = [f.attname for f in Account._meta.concrete_fields]
_SELECT_ACCOUNT = (
    "SELECT "
    + ", ".join(f'"ledger_account"."{f.column}"' for f in Account._meta.concrete_fields)
    + ' FROM "ledger_account" WHERE "ledger_account"."kind" = %s AND "ledger_account"."owner_id" = %s'
    ' AND "ledger_account"."currency" = %s'
)
_STORED = "_ledger_stored"  # on an Account account_for() read: its identity and flags as stored


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

    def columns(self) -> dict[str, Any]:
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
    again, so two first postings for a new affiliate create one account (UNIQUE decides). The
    instance remembers what it was read as, so a posting need not read it again (_accounts)."""
    code = currencies.normalize(currency)
    policy = _policy(kind, owner_id)
    lookup = {"kind": str(kind), "owner_id": owner_id, "currency": code}
    account = _stored_account(lookup)
    if account is None:
        flags = {"tracks_balance": policy.tracks_balance, "enforce_balance": policy.enforce_balance}
        Account.objects.bulk_create([Account(**lookup, **flags)], ignore_conflicts=True)
        account = _stored_account(lookup)
        if account is None:  # pragma: no cover - the UNIQUE row exists once the insert returned
            raise NotFound("ledger account not found", code=LedgerErrorCode.INVALID_ACCOUNT)
    return _remember(account)


def _stored_account(lookup: dict[str, str]) -> Account | None:
    """The one SELECT of account_for(), as plain SQL (it runs on every posting: no ORM compile)."""
    with connection.cursor() as cursor:
        cursor.execute(_SELECT_ACCOUNT, [lookup["kind"], lookup["owner_id"], lookup["currency"]])
        row = cursor.fetchone()
    return None if row is None else Account.from_db(connection.alias, _ACCOUNT_FIELDS, row)


@dataclass(frozen=True)
class AccountRef:
    """An account by its identity (kind, owner, currency), for a posting that need not read it first."""

    kind: str
    currency: str
    owner_id: str = ""


def post_transfer(
    *,
    transfer_id: str,
    debit: Account | AccountRef,
    credit: Account | AccountRef,
    amount: int,
    kind: str,
    reference: str = "",
) -> Transfer:
    """A single-phase transfer: posted at once on both accounts.

    A debit of an enforce_balance account is guarded (insufficient_balance) unless `kind` is a
    reversal or a late payout (OVERDRAFT_KINDS: money that already went out), which may take it below zero.
    Safety: validation, UNIQUE id (replay returns the original), guarded UPDATE, pk lock order.

    Accounts given as AccountRef are looked up by the posting itself: an unguarded posting that
    moves at most one tracked account (an earn, a reversal) is then ONE statement (_post_by_ref);
    anything else (a guard, a first posting whose account does not exist yet, a replay) resolves
    the refs with account_for() and takes the path below, whose rules are the same."""
    if isinstance(debit, AccountRef) and isinstance(credit, AccountRef):
        posted = _post_by_ref(transfer_id, debit, credit, amount, kind, reference)
        if posted is not None:
            return posted
    spec = _new_spec(transfer_id, _account(debit), _account(credit), amount, kind, reference, TransferFlag.PLAIN)
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


def _account(account: Account | AccountRef) -> Account:
    if isinstance(account, AccountRef):
        return account_for(kind=account.kind, owner_id=account.owner_id, currency=account.currency)
    return account


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


def _snapshot(account: Account) -> tuple[object, ...]:
    return (
        account.pk,
        account.kind,
        account.owner_id,
        account.currency,
        account.tracks_balance,
        account.enforce_balance,
    )


def _remember(account: Account) -> Account:
    setattr(account, _STORED, _snapshot(account))
    return account


def _as_stored(account: Account) -> bool:
    """This instance was read by account_for() and none of what decides a posting (pk, kind,
    owner, currency, flags) was changed in memory since. Those columns never change in the
    database (the admin is read-only, the services write balance columns only)."""
    return getattr(account, _STORED, None) == _snapshot(account)


def _accounts(debit: Account, credit: Account) -> tuple[Account, Account]:
    """Both accounts as stored (their flags decide the guard, not an instance a caller may have
    altered); same currency, a known one, and two different accounts. Instances account_for()
    just read and nobody altered are taken as they are; any other pair is read again, in one query."""
    if not isinstance(debit, Account) or not isinstance(credit, Account) or debit.pk is None or credit.pk is None:
        raise ValidationError("debit and credit must be saved ledger accounts", code=LedgerErrorCode.INVALID_ACCOUNT)
    if debit.pk == credit.pk:
        raise ValidationError("a transfer needs two different accounts", code=LedgerErrorCode.SAME_ACCOUNT)
    if not (_as_stored(debit) and _as_stored(credit)):
        stored = Account.objects.in_bulk([debit.pk, credit.pk])
        if len(stored) != 2:
            raise NotFound("ledger account not found", code=LedgerErrorCode.INVALID_ACCOUNT)
        debit, credit = _remember(stored[debit.pk]), _remember(stored[credit.pk])
    _same_currency(debit, credit)
    return debit, credit


def _same_currency(debit: Account, credit: Account) -> None:
    if debit.currency != credit.currency:
        raise ValidationError(
            f"cannot move {debit.currency} into a {credit.currency} account",
            code=LedgerErrorCode.CURRENCY_MISMATCH,
            debit_currency=debit.currency,
            credit_currency=credit.currency,
        )
    currencies.normalize(debit.currency)


def _new_spec(
    transfer_id: str, debit: Account, credit: Account, amount: int, kind: str, reference: str, flag: str
) -> _Spec:
    transfer_id, amount, kind = _checked_fields(transfer_id, amount, kind, reference)
    debit, credit = _accounts(debit, credit)
    return _Spec(transfer_id, debit, credit, amount, kind, flag, reference)


def _checked_fields(transfer_id: object, amount: object, kind: object, reference: object) -> tuple[str, int, str]:
    checked = _checked_id(transfer_id), _checked_amount(amount), _checked_kind(kind)
    if not isinstance(reference, str) or len(reference) > 255:
        raise ValidationError(
            "reference must be a string of at most 255 characters", code=LedgerErrorCode.INVALID_REFERENCE
        )
    return checked


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


def _post_by_ref(
    transfer_id: str, debit: AccountRef, credit: AccountRef, amount: int, kind: str, reference: str
) -> Transfer | None:
    """The common single-phase posting in ONE statement (_INSERT_BY_REF): both accounts looked up,
    the transfer inserted (ON CONFLICT DO NOTHING) and the one tracked account's columns moved, so
    an earn or a reversal costs one round trip. The accounts' flags come from their kind's policy,
    the table account_for() creates them from (they never change afterwards).

    Validation is the other path's and refuses before anything is sent. None = this path does not
    apply or did not write: a guarded debit (it needs the savepoint that lets a refusal undo only
    itself), two tracked accounts (pk lock order), an account that does not exist yet, or a row
    with this id already there (replay, lost race). The caller then takes the ordinary path, which
    creates the accounts, or returns / compares / refuses the existing row."""
    spec = _ref_spec(transfer_id, debit, credit, amount, kind, reference)
    moves = _moves(spec)
    # A data-modifying WITH is PostgreSQL's: the demo's SQLite takes the ordinary path.
    if connection.vendor != "postgresql" or len(moves) > 1 or any(move.guard is not None for move in moves):
        return None
    columns = spec.columns()
    del columns["debit_account_id"], columns["credit_account_id"]
    created_at = timezone.now()
    sql, moved = _INSERT_BY_REF, []
    if moves:
        (move,) = moves
        side = "debit_account_id" if move.account is spec.debit else "credit_account_id"
        sql += _MOVE_INSERTED.format(sets=_sets(move), side=side)
        moved = list(move.deltas.values())
    lookups = [value for account in (spec.debit, spec.credit) for value in _identity(account)]
    with _write(savepoint=False), connection.cursor() as cursor:
        cursor.execute(sql + _BY_REF_RESULT, [*lookups, spec.id, *columns.values(), created_at, *moved])
        row = cursor.fetchone()
    if row is None:
        return None
    transfer = Transfer(id=spec.id, debit_account_id=row[0], credit_account_id=row[1], created_at=created_at, **columns)
    transfer._state.adding, transfer._state.db = False, connection.alias
    return transfer


def _ref_spec(transfer_id: str, debit: AccountRef, credit: AccountRef, amount: int, kind: str, reference: str) -> _Spec:
    """_new_spec() for accounts known by identity: the same checks, the accounts in memory only
    (pk unknown, flags from their kind's policy)."""
    fields = _checked_fields(transfer_id, amount, kind, reference)
    debit_account, credit_account = _unsaved(debit), _unsaved(credit)
    if _identity(debit_account) == _identity(credit_account):
        raise ValidationError("a transfer needs two different accounts", code=LedgerErrorCode.SAME_ACCOUNT)
    _same_currency(debit_account, credit_account)
    return _Spec(fields[0], debit_account, credit_account, fields[1], fields[2], TransferFlag.PLAIN, reference)


def _unsaved(ref: AccountRef) -> Account:
    policy = _policy(ref.kind, ref.owner_id)
    return Account(
        kind=str(ref.kind),
        owner_id=ref.owner_id,
        currency=currencies.normalize(ref.currency),
        tracks_balance=policy.tracks_balance,
        enforce_balance=policy.enforce_balance,
    )


def _identity(account: Account) -> tuple[str, str, str]:
    return (account.kind, account.owner_id, account.currency)


def _insert_and_move(spec: _Spec) -> Transfer:
    """The INSERT, then the tracked accounts' UPDATEs in primary-key order, in one transaction
    (the caller's if one is open). Only a guarded posting can be refused after its insert: it
    alone takes a savepoint, so the refusal rolls back the insert and leaves the caller's
    transaction usable. A replay or a lost race writes nothing and is resolved after the block."""
    moves = sorted(_moves(spec), key=lambda m: m.account.pk)
    with _write(savepoint=any(move.guard is not None for move in moves)):
        transfer = _insert(spec)
        if transfer is not None:
            for move in moves:
                _apply(move, spec)
    return transfer if transfer is not None else _already_recorded(spec)


@contextmanager
def _write(*, savepoint: bool) -> Iterator[None]:
    """core.transactions.atomic(), with the savepoint only when asked for (a nested block without
    one still marks the caller's transaction for rollback if the write fails)."""
    try:
        with transaction.atomic(savepoint=savepoint):
            yield
    finally:
        run_exit_hooks()


def _insert(spec: _Spec) -> Transfer | None:
    """ONE statement; None = a row with this id or this pending_id exists (committed: ON CONFLICT
    waits for an in-flight insert of the same key to end)."""
    columns = spec.columns()
    created_at = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_TRANSFER, [spec.id, *columns.values(), created_at])
        if cursor.fetchone() is None:
            return None
    transfer = Transfer(id=spec.id, created_at=created_at, **columns)
    transfer._state.adding, transfer._state.db = False, connection.alias
    return transfer


def _already_recorded(spec: _Spec) -> Transfer:
    """The insert found a committed row: the same id (replay) or another resolution of the same
    pending transfer. READ COMMITTED: this new statement sees it."""
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
        raise IntegrityError(f"transfer {spec.id!r} conflicted with a row that cannot be found")
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


def _sets(move: _Move) -> str:
    return ", ".join(f'"{column}" = "ledger_account"."{column}" + %s' for column in move.deltas)


def _apply(move: _Move, spec: _Spec) -> None:
    """ONE UPDATE of the account's columns; a guarded one is
    UPDATE ... WHERE id = %s AND credits_posted - debits_posted - debits_pending >= amount
    (written as credits_posted >= debits_posted + debits_pending + amount)."""
    sql = f'UPDATE "ledger_account" SET {_sets(move)} WHERE "ledger_account"."id" = %s'
    params: list[Any] = [*move.deltas.values(), move.account.pk]
    if move.guard is not None:
        sql += ' AND "credits_posted" >= "debits_posted" + "debits_pending" + %s'
        params.append(move.guard)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        updated = cursor.rowcount
    if updated == 0:
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
