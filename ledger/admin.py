"""Read-only screens of the books: accounts with their balances, transfers, an account's
statement (its transfers with debit / credit, running balance and running available, each linked to
the transfer and to the business object it references) and the trial balance (per currency, debits
against credits). Nothing here writes: money moves only through ledger.services. The statement and
trial balance pages are for super-admins only."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from core.admin_base import ReadOnlyAdmin
from core.admin_links import admin_change_path
from core.admin_money import Money, money_column
from core.currencies import from_minor
from ledger import selectors
from ledger.models import Account, Transfer


def _money(minor: int | None, currency: str) -> Money | None:
    """A ledger amount (integer minor units) as what core.admin_money shows: '$7.50'."""
    return None if minor is None else (from_minor(int(minor), currency), currency)


def account_balance(account: Account) -> selectors.Balance:
    """Tracked accounts answer from the row already loaded; a platform account sums its transfers
    (once per row on a page: the columns below share it)."""
    cached: selectors.Balance | None = getattr(account, "_admin_balance", None)
    if cached is None:
        if account.tracks_balance:
            cached = selectors.Balance(
                account.debits_pending, account.debits_posted, account.credits_pending, account.credits_posted
            )
        else:
            cached = selectors.balance(account)
        account._admin_balance = cached  # type: ignore[attr-defined]
    return cached


@dataclass(frozen=True)
class StatementRow:
    transfer: Transfer
    transfer_url: str
    debit: Decimal | None
    credit: Decimal | None
    running_balance: Decimal
    running_available: Decimal
    object_url: str | None


@dataclass(frozen=True)
class TrialBalanceLine:
    currency: str
    accounts: int
    debits_posted: Decimal
    credits_posted: Decimal
    difference_posted: Decimal
    debits_pending: Decimal
    credits_pending: Decimal
    difference_pending: Decimal
    balanced: bool


def reference_url(reference: str) -> str | None:
    """The admin change page of the object a transfer's reference names ("payouts.payout:12"), or
    None when the reference is not "<app_label>.<model>:<pk>" of a model registered in the admin.
    Resolved by name, so the ledger imports no domain app."""
    label, sep, pk = reference.partition(":")
    return admin_change_path(label, pk) if sep else None


def _annotation(transfer: Transfer, name: str) -> int:
    """A window sum selectors.statement annotated on the row (not a model field)."""
    return int(getattr(transfer, name))


def statement_rows(account: Account) -> list[StatementRow]:
    rows = []
    currency = account.currency
    for transfer in selectors.statement(account):
        amount = from_minor(transfer.amount, currency)
        debited = transfer.debit_account_id == account.pk
        rows.append(
            StatementRow(
                transfer=transfer,
                transfer_url=reverse("admin:ledger_transfer_change", args=[quote(transfer.pk)]),
                debit=amount if debited else None,
                credit=None if debited else amount,
                running_balance=from_minor(_annotation(transfer, "running_balance"), currency),
                running_available=from_minor(_annotation(transfer, "running_available"), currency),
                object_url=reference_url(transfer.reference),
            )
        )
    return rows


def trial_balance_lines() -> list[TrialBalanceLine]:
    lines = []
    for row in selectors.trial_balance():
        c = row.currency
        lines.append(
            TrialBalanceLine(
                currency=c,
                accounts=row.accounts,
                debits_posted=from_minor(row.debits_posted, c),
                credits_posted=from_minor(row.credits_posted, c),
                difference_posted=from_minor(row.debits_posted - row.credits_posted, c),
                debits_pending=from_minor(row.debits_pending, c),
                credits_pending=from_minor(row.credits_pending, c),
                difference_pending=from_minor(row.debits_pending - row.credits_pending, c),
                balanced=row.balanced,
            )
        )
    return lines


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    change_list_template = "admin/ledger/account/change_list.html"
    list_display = [
        "id",
        "kind",
        "owner_id",
        "enforce_balance",
        "posted_display",
        "held_display",
        "available_display",
        "statement_link",
    ]
    # The change page (view only): the balances in money, whether the account keeps them or not.
    fields: ClassVar[tuple[str, ...]] = (
        "kind",
        "owner_id",
        "currency",
        "enforce_balance",
        "posted_display",
        "held_display",
        "available_display",
        "credits_posted_display",
        "debits_posted_display",
        "credits_pending_display",
        "statement_link",
        "created_at",
    )
    readonly_fields = fields
    list_filter = ["kind", "currency", "enforce_balance"]
    search_fields = ["owner_id"]

    def get_urls(self) -> list[URLPattern]:
        # Before the ModelAdmin's own: "<path:object_id>/" would otherwise catch these.
        own = [
            path("trial-balance/", self._super_admin_view(self.trial_balance_view), name="ledger_trial_balance"),
            path(
                "<int:account_id>/statement/",
                self._super_admin_view(self.statement_view),
                name="ledger_account_statement",
            ),
        ]
        return own + super().get_urls()

    def _super_admin_view(self, view: Any) -> Any:
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not (request.user.is_active and request.user.is_superuser):
                raise PermissionDenied("the books' reports are for super-admins")
            return view(request, *args, **kwargs)

        return self.admin_site.admin_view(checked)  # anonymous -> the login page

    def trial_balance_view(self, request: HttpRequest) -> HttpResponse:
        lines = trial_balance_lines()
        context = {
            **self.admin_site.each_context(request),
            "title": "Trial balance",
            "opts": self.model._meta,
            "lines": lines,
            "all_balanced": all(line.balanced for line in lines),
        }
        return TemplateResponse(request, "admin/ledger/trial_balance.html", context)

    def statement_view(self, request: HttpRequest, account_id: int) -> HttpResponse:
        account = get_object_or_404(Account, pk=account_id)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Statement: {account}",
            "opts": self.model._meta,
            "account": account,
            "rows": statement_rows(account),
            "balance": {k: from_minor(v, account.currency) for k, v in _totals(account).items()},
        }
        return TemplateResponse(request, "admin/ledger/account_statement.html", context)

    @money_column("Balance (posted)")
    def posted_display(self, obj: Account) -> Money | None:
        return _money(account_balance(obj).posted, obj.currency)

    @money_column("Held for payouts")
    def held_display(self, obj: Account) -> Money | None:
        return _money(account_balance(obj).debits_pending, obj.currency)

    @money_column("Available")
    def available_display(self, obj: Account) -> Money | None:
        return _money(account_balance(obj).available, obj.currency)

    @money_column("Posted credits")
    def credits_posted_display(self, obj: Account) -> Money | None:
        return _money(account_balance(obj).credits_posted, obj.currency)

    @money_column("Posted debits")
    def debits_posted_display(self, obj: Account) -> Money | None:
        return _money(account_balance(obj).debits_posted, obj.currency)

    @money_column("Held credits")
    def credits_pending_display(self, obj: Account) -> Money | None:
        return _money(account_balance(obj).credits_pending, obj.currency)

    @admin.display(description="statement")
    def statement_link(self, obj: Account) -> str:
        page = reverse("admin:ledger_account_statement", args=[obj.pk])
        url = reverse("admin:ledger_transfer_changelist") + f"?{AccountStatementFilter.parameter_name}={obj.pk}"
        return format_html('<a href="{}">statement</a> &middot; <a href="{}">transfers</a>', page, url)


def _totals(account: Account) -> dict[str, int]:
    bal = selectors.balance(account)
    return {"posted": bal.posted, "available": bal.available, "pending_debits": bal.debits_pending}


class AccountStatementFilter(admin.SimpleListFilter):
    """?account=<pk>: the account's statement (ledger.selectors.statement) with running balances."""

    title = "account statement"
    parameter_name = "account"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        account = self._account()
        return [(str(account.pk), str(account))] if account else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Transfer]) -> QuerySet[Transfer]:
        account = self._account()
        return selectors.statement(account) if account else queryset

    def _account(self) -> Account | None:
        value = self.value()
        return Account.objects.filter(pk=value).first() if value and value.isdigit() else None


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "flag",
        "kind",
        "debit_account",
        "credit_account",
        "amount_display",
        "pending",
        "reference",
        "running_balance_display",
    ]
    fields: ClassVar[tuple[str, ...]] = (
        "id",
        "created_at",
        "kind",
        "flag",
        "amount_display",
        "debit_account",
        "credit_account",
        "pending",
        "reference_link",
    )
    readonly_fields = fields
    list_filter = [AccountStatementFilter, "flag", "kind", "currency"]
    search_fields = ["id", "reference"]
    list_select_related = ["debit_account", "credit_account"]
    ordering = ["-created_at", "-id"]

    @money_column("Amount", ordering="amount")
    def amount_display(self, obj: Transfer) -> Money | None:
        return _money(obj.amount, obj.currency)

    @money_column("Running balance (statement)")
    def running_balance_display(self, obj: Transfer) -> Money | None:
        return _money(getattr(obj, "running_balance", None), obj.currency)

    @admin.display(description="records")
    def reference_link(self, obj: Transfer) -> str:
        url = reference_url(obj.reference)
        return format_html('<a href="{}">{}</a>', url, obj.reference) if url else (obj.reference or "-")
