"""Reads of the books: balances, the available amount, an account's statement, the trial balance.

A tracked account (the affiliate's payable) answers from its four columns in one query; a platform
account's balance is the sum of its transfers (it keeps no columns, so that no posting waits on
its row). A pending transfer counts in the *_pending sums until a post or void resolves it.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import BigIntegerField, Case, F, Q, QuerySet, Sum, Value, When, Window

from ledger.models import POSTED_FLAGS, RESOLUTION_FLAGS, Account, Transfer, TransferFlag

COLUMNS = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")


@dataclass(frozen=True)
class Balance:
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    @property
    def posted(self) -> int:
        """Credits minus debits posted: what the platform owes on a payable account."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        """What a new reservation may take: credits_posted - debits_posted - debits_pending
        (pending credits are not spendable yet). Negative after a clawback."""
        return self.credits_posted - self.debits_posted - self.debits_pending


@dataclass(frozen=True)
class TrialBalanceRow:
    currency: str
    accounts: int
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int

    @property
    def balanced(self) -> bool:
        return self.debits_posted == self.credits_posted and self.debits_pending == self.credits_pending


def balance(account: Account) -> Balance:
    """The account's four sums, in one query: columns if it tracks them, else its transfers."""
    if account.tracks_balance:
        row = Account.objects.filter(pk=account.pk).values(*COLUMNS).get()
        return Balance(**row)
    return derived_balances([account.pk]).get(account.pk, Balance())


def available(account: Account) -> int:
    return balance(account).available


_DERIVED_SQL = """
WITH legs AS (
    SELECT t.debit_account_id AS account_id, 'd' AS side, t.flag, t.amount, r.id IS NOT NULL AS resolved
      FROM {transfer} t LEFT JOIN {transfer} r ON r.pending_id = t.id {where_debit}
    UNION ALL
    SELECT t.credit_account_id, 'c', t.flag, t.amount, r.id IS NOT NULL
      FROM {transfer} t LEFT JOIN {transfer} r ON r.pending_id = t.id {where_credit}
)
SELECT account_id,
       CAST(SUM(CASE WHEN side = 'd' AND flag = %s AND NOT resolved THEN amount ELSE 0 END) AS BIGINT),
       CAST(SUM(CASE WHEN side = 'd' AND flag IN (%s, %s) THEN amount ELSE 0 END) AS BIGINT),
       CAST(SUM(CASE WHEN side = 'c' AND flag = %s AND NOT resolved THEN amount ELSE 0 END) AS BIGINT),
       CAST(SUM(CASE WHEN side = 'c' AND flag IN (%s, %s) THEN amount ELSE 0 END) AS BIGINT)
  FROM legs GROUP BY account_id
"""


def derived_balances(account_ids: Iterable[int] | None = None) -> dict[int, Balance]:
    """Each account's four sums computed from its transfers alone (one query): the truth the
    tracked columns must equal, and the only balance a platform account has."""
    ids = None if account_ids is None else [int(pk) for pk in account_ids]
    where_debit = where_credit = ""
    params: list[int | str] = []
    if ids is not None:
        if not ids:
            return {}
        marks = ", ".join(["%s"] * len(ids))
        where_debit, where_credit = f"WHERE t.debit_account_id IN ({marks})", f"WHERE t.credit_account_id IN ({marks})"
        params = [*ids, *ids]
    sql = _DERIVED_SQL.format(transfer=Transfer._meta.db_table, where_debit=where_debit, where_credit=where_credit)
    posted = [TransferFlag.PLAIN.value, TransferFlag.POST_PENDING.value]
    sums = [TransferFlag.PENDING.value, *posted, TransferFlag.PENDING.value, *posted]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *sums])
        return {row[0]: Balance(*(int(v) for v in row[1:])) for row in cursor.fetchall()}


def account_balances(
    accounts: Iterable[Account] | None = None, derived: dict[int, Balance] | None = None
) -> dict[Account, Balance]:
    """Every account (or those given) with its balance as the product reads it: columns for
    tracked accounts, transfer sums for the platform's. Two queries, none if both are given."""
    accounts = list(Account.objects.order_by("pk") if accounts is None else accounts)
    if derived is None:
        derived = derived_balances([a.pk for a in accounts if not a.tracks_balance])
    return {
        a: Balance(**{c: getattr(a, c) for c in COLUMNS}) if a.tracks_balance else derived.get(a.pk, Balance())
        for a in accounts
    }


def trial_balance(balances: dict[Account, Balance] | None = None) -> list[TrialBalanceRow]:
    """Per currency, the sums over all accounts: debits must equal credits, posted and pending.
    A tracked account's column that drifted from its transfers unbalances its currency here."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for account, bal in (account_balances() if balances is None else balances).items():
        row = totals[account.currency]
        row[0] += 1
        row[1] += bal.debits_posted
        row[2] += bal.credits_posted
        row[3] += bal.debits_pending
        row[4] += bal.credits_pending
    return [TrialBalanceRow(currency, *sums) for currency, sums in sorted(totals.items())]


def statement(account: Account) -> QuerySet[Transfer]:
    """The account's transfers, oldest first, each annotated with `signed_amount` (its posted
    effect: + credit, - debit), `held` (a pending debit holds its amount; its resolution releases
    it), `running_balance` (posted) and `running_available` (posted less holds), by a window sum.

    Filter it further only on these annotations: a WHERE on other fields would change the rows the
    running sums are taken over."""
    posted = Q(flag__in=POSTED_FLAGS)
    signed = Case(
        When(posted & Q(credit_account=account), then=F("amount")),
        When(posted, then=-F("amount")),
        default=Value(0),
        output_field=BigIntegerField(),
    )
    held = Case(
        When(Q(flag=TransferFlag.PENDING, debit_account=account), then=-F("amount")),
        When(Q(flag__in=RESOLUTION_FLAGS, debit_account=account), then=F("pending__amount")),
        default=Value(0),
        output_field=BigIntegerField(),
    )
    order = [F("created_at").asc(), F("id").asc()]
    return (
        Transfer.objects.filter(Q(debit_account=account) | Q(credit_account=account))
        .select_related("debit_account", "credit_account")
        .annotate(
            signed_amount=signed,
            held=held,
            running_balance=Window(Sum(signed), order_by=order),
            running_available=Window(Sum(signed + held), order_by=order),
        )
        .order_by("created_at", "id")
    )
