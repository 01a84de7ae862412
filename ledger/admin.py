"""Read-only screens of the books: accounts with their balances, transfers, and an account's
statement (the transfer list filtered on one account, with running balances). Nothing here
writes: money moves only through ledger.services."""

from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from core.admin_base import ReadOnlyAdmin
from core.currencies import from_minor
from ledger import selectors
from ledger.models import Account, Transfer


def _major(minor: int | None, currency: str) -> Decimal | str:
    return "-" if minor is None else from_minor(int(minor), currency)


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "kind",
        "owner_id",
        "currency",
        "enforce_balance",
        "credits_posted",
        "debits_posted",
        "debits_pending",
        "credits_pending",
        "available_display",
        "statement_link",
    ]
    list_filter = ["kind", "currency", "enforce_balance"]
    search_fields = ["owner_id"]

    @admin.display(description="available (major units)")
    def available_display(self, obj: Account) -> Decimal | str:
        # Tracked accounts answer from the row already loaded; a platform account sums its transfers.
        bal = selectors.Balance(obj.debits_pending, obj.debits_posted, obj.credits_pending, obj.credits_posted)
        if not obj.tracks_balance:
            bal = selectors.balance(obj)
        return _major(bal.available, obj.currency)

    @admin.display(description="statement")
    def statement_link(self, obj: Account) -> str:
        url = reverse("admin:ledger_transfer_changelist") + f"?{AccountStatementFilter.parameter_name}={obj.pk}"
        return format_html('<a href="{}">statement</a>', url)


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
        "currency",
        "pending",
        "reference",
        "running_balance_display",
    ]
    list_filter = [AccountStatementFilter, "flag", "kind", "currency"]
    search_fields = ["id", "reference"]
    list_select_related = ["debit_account", "credit_account"]
    ordering = ["-created_at", "-id"]

    @admin.display(description="amount")
    def amount_display(self, obj: Transfer) -> Decimal | str:
        return _major(obj.amount, obj.currency)

    @admin.display(description="running balance (statement)")
    def running_balance_display(self, obj: Transfer) -> Decimal | str:
        return _major(getattr(obj, "running_balance", None), obj.currency)
