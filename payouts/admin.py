"""The 409-aware review screens: every button and action goes through payouts.services.

The change page carries the status the reviewer saw (`_seen_status`): a stale click is a Conflict
("#47828 already rejected by kerem at 09:14 (refreshed)") and the page re-renders with the current
state, never a silent overwrite. django-fsm's FSMAdminMixin is not used: its button path checks no
permission and reloads the object, turning a lost race into "not allowed". Who may review is
payouts.authority's one rule, asked by the services (a refusal is a message, the API's 403 in
words), and by the transition declarations that draw the buttons. The reason is checked by the
services too (payouts.reasons): a refused reason is a message and nothing is written; a reject
needs one (payouts.reasons.clean_decision_reason, which the services run for every door); the bulk
action runs the same function before its loop, so that its intermediate page asks again once
instead of refusing row by row. A reason typed by a reviewer whose click was refused (a lost race, a
refused reason) is kept in the session and put back into the form, so it is never lost.

The change page is the review page: what the decision depends on (balance and statement, KYC and
recipient with their last change, the commissions behind the amount, earlier payouts, dual
approval) is read by payouts.selectors.payout_review and only rendered here.
"""

from datetime import datetime
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.timesince import timesince

from audit.admin_mixins import StateDiagramAdminMixin
from audit.transitions import available_transitions
from core.actors import signed_in_user
from core.admin_messages import report_error
from core.admin_money import Money, money_column
from core.errors import Conflict, DomainError
from payouts import services
from payouts.authority import may_review
from payouts.errors import PayoutConflict
from payouts.models import Payout, PayoutStatus
from payouts.reasons import clean_decision_reason, shown_draft
from payouts.selectors import approval_progress, payout_review, payout_trail

# Review decisions only: processing/paid/failed belong to the dispatch, the webhook and the poller
# (a processing payout is stopped with "Cancel at Wise", whose webhook then fails it).
BUTTON_LABELS = {
    "approve": "Approve payout",
    "reject": "Reject payout\u2026",
    "cancel": "Cancel before it is sent",
    "retry": "Send again (new attempt)",
    "reopen": "Re-open for review",
}
# How each button looks (payouts/static/payouts/review.css): the decision that moves money and the
# one that refuses it must never look alike.
BUTTON_STYLES = {"approve": "decision-approve", "reject": "decision-reject"}
# The reason a reviewer typed before a refused click, per payout, until the page shows it again.
DRAFT_KEY = "payouts.review_draft.{}"


class StatusFilter(admin.SimpleListFilter):
    """Defaults to `requested`: the review queue is what a super-admin opens the list for."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [*PayoutStatus.choices, ("all", "All")]

    def value(self) -> str:
        return super().value() or PayoutStatus.REQUESTED

    def queryset(self, request: HttpRequest, queryset: QuerySet[Payout]) -> QuerySet[Payout]:
        return queryset if self.value() == "all" else queryset.filter(status=self.value())

    def choices(self, changelist: Any) -> Any:
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }


def conflict_text(payout_id: int, exc: Conflict) -> str:
    """'#47828 already rejected by kerem at 09:14 (refreshed)'.

    When a job moved the payout on after a person did (the Wise dispatch runs right after an approval),
    the reviewer is told the person's decision, not the job's: '#47828 already approved by kerem at
    09:14, now processing (refreshed)'.
    """
    details = exc.details
    decided, current = details.get("decided_status"), details.get("current_status")
    text = f"#{payout_id} already {decided or current}"
    if details.get("current_reviewer"):
        text += f" by {details['current_reviewer']}"
    if details.get("reviewed_at"):
        text += f" at {timezone.localtime(datetime.fromisoformat(details['reviewed_at'])):%H:%M}"
    if decided and decided != current:
        text += f", now {current}"
    return f"{text} (refreshed)"


def report(request: HttpRequest, payout_id: int, exc: DomainError) -> None:
    if isinstance(exc, Conflict):
        exc = PayoutConflict(conflict_text(payout_id, exc), **exc.details)
    report_error(request, exc, prefix="" if isinstance(exc, Conflict) else f"#{payout_id}: ")


def done_text(payout: Payout, transition: str) -> str:
    """'#12 approved.', or for the first of two approvals '#12: approval 1 of 2 recorded (kerem);
    a second super-admin must approve it.'"""
    if transition == "approve" and payout.status == PayoutStatus.REQUESTED:
        progress = approval_progress(payout)
        recorded = f"approval {progress.given} of {progress.required} recorded ({', '.join(progress.approvers)})"
        return f"#{payout.pk}: {recorded}; a second super-admin must approve it."
    return f"#{payout.pk} {payout.status}."


def _selected_ids(request: HttpRequest, queryset: QuerySet[Payout]) -> list[int]:
    """The rows the reviewer ticked, even those that left the filtered list since (e.g. rejected by
    someone else meanwhile): each must be reported, not silently dropped by the status filter."""
    if request.POST.get("select_across") == "1":
        return list(queryset.order_by("pk").values_list("pk", flat=True))
    return sorted({int(pk) for pk in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME) if pk.isdigit()})


# The change page's groups of fields: (title, field names).
FIELD_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Request", ("affiliate", "amount_shown", "status", "requested_by", "created_at")),
    ("Review", ("approvals", "reason", "reviewed_by", "reviewed_at")),
    (
        "Payment at Wise",
        (
            "provider_status",
            "provider_status_at",
            "approved_recipient_id",
            "attempt",
            "dispatched_at",
            "wise_funded_at",
            "wise_transfer_id",
            "wise_quote_id",
            "wise_state",
            "wise_state_at",
            "paid_after_failure_at",
        ),
    ),
)


@admin.register(Payout)
class PayoutAdmin(StateDiagramAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "affiliate",
        "amount_shown",
        "kyc",
        "status",
        "paid_after_failure",
        "reviewed_by",
        "age",
    ]
    list_filter = [StatusFilter]
    list_select_related = ["affiliate__user", "reviewed_by"]
    search_fields = ["id", "affiliate__user__username", "wise_transfer_id"]
    ordering = ["created_at", "id"]
    actions = ["approve_selected", "reject_selected", "cancel_selected_at_wise"]
    change_form_template = "admin/payouts/payout/change_form.html"
    # Groups with plain titles: the request, the reviewer's side, and Wise's side. The reviewer's
    # note (reason) and what Wise reported (provider_status) are separate fields.
    fieldsets = tuple((title, {"fields": names}) for title, names in FIELD_GROUPS)
    # Status (and everything else) changes only through the services.
    readonly_fields: ClassVar[tuple[str, ...]] = tuple(name for _, names in FIELD_GROUPS for name in names)

    class Media:
        css = {"all": ("payouts/review.css",)}

    @money_column("Amount", ordering="amount")
    def amount_shown(self, payout: Payout) -> Money:
        return payout.amount, payout.currency

    @admin.display(description="Approvals")
    def approvals(self, payout: Payout) -> str:
        """'1 of 2 approvals (kerem)' above the dual-approval threshold; the approvals that count now."""
        return approval_progress(payout).describe() or "one super-admin's approval needed"

    @admin.display(description="KYC", ordering="affiliate__kyc_status")
    def kyc(self, payout: Payout) -> str:
        return payout.affiliate.get_kyc_status_display()

    @admin.display(description="Paid after failure", ordering="paid_after_failure_at")
    def paid_after_failure(self, payout: Payout) -> str:
        """Wise sent money after it was released: the critical beacon's object, for a human to settle."""
        if payout.paid_after_failure_at is None:
            return ""
        return f"PAID AFTER FAILURE {timezone.localtime(payout.paid_after_failure_at):%Y-%m-%d %H:%M}"

    @admin.display(description="Age", ordering="created_at")
    def age(self, payout: Payout) -> str:
        return timesince(payout.created_at)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # affiliates request payouts through the API, against their balance

    def has_delete_permission(self, request: HttpRequest, obj: Payout | None = None) -> bool:
        return False

    # --- the change page ------------------------------------------------------------------
    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        if request.method == "POST" and ("_transition" in request.POST or "_cancel_at_wise" in request.POST):
            return self._button(request, object_id)
        payout = self.get_object(request, object_id)
        context = {**(extra_context or {}), **self._review_context(request, payout)}
        context.update(show_save=False, show_save_and_continue=False, show_save_and_add_another=False)
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _review_context(self, request: HttpRequest, payout: Payout | None) -> dict:
        if payout is None:
            return {}
        # The buttons are what payouts.authority allows this user (the declarations ask it); an
        # approval this user already gave is not offered again.
        review = payout_review(payout)
        approved = request.user.get_username() in review.approval.approvers
        buttons = [
            (option.name, BUTTON_LABELS[option.name], BUTTON_STYLES.get(option.name, ""))
            for option in available_transitions(payout, user=request.user)
            if option.name in BUTTON_LABELS and not (option.name == "approve" and approved)
        ]
        can_cancel_at_wise = payout.status == PayoutStatus.PROCESSING and bool(payout.wise_transfer_id)
        return {
            "seen_status": payout.status,
            "seen_status_label": payout.get_status_display(),
            "transition_buttons": buttons,
            "can_cancel_at_wise": can_cancel_at_wise and may_review(payout, request.user),
            "reason_draft": request.session.pop(DRAFT_KEY.format(payout.pk), ""),
            "review": review,
            "history": payout_trail(payout),
        }

    def _button(self, request: HttpRequest, object_id: str) -> HttpResponse:
        payout = self.get_object(request, object_id)
        if payout is None or not self.has_view_permission(request, payout):
            raise DjangoPermissionDenied
        try:
            if "_cancel_at_wise" in request.POST:
                services.cancel_at_wise(payout_id=payout.pk, actor=signed_in_user(request))
                self.message_user(request, f"#{payout.pk}: Wise accepted the cancellation.", messages.SUCCESS)
            elif request.POST["_transition"] not in BUTTON_LABELS:
                self.message_user(request, f"#{payout.pk}: not a review action.", messages.ERROR)
            else:
                transition, reason = request.POST["_transition"], request.POST.get("_reason", "")
                done = services.review_payout(
                    payout_id=payout.pk,
                    transition=transition,
                    actor=signed_in_user(request),
                    expected_status=request.POST.get("_seen_status") or None,
                    reason=reason,  # checked by the service (payouts.reasons.clean_decision_reason)
                )
                self.message_user(request, done_text(done, transition), messages.SUCCESS)
        except DomainError as exc:
            report(request, payout.pk, exc)
            # The page comes back with the state as it is now and the reviewer's words as typed.
            if request.POST.get("_reason"):
                request.session[DRAFT_KEY.format(payout.pk)] = shown_draft(request.POST["_reason"])
        # Post/redirect/get: the page re-renders with the state as it is now.
        return HttpResponseRedirect(request.path)

    # --- bulk actions ---------------------------------------------------------------------
    @admin.action(description="Approve selected payouts")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Payout]) -> None:
        self._bulk(request, queryset, "approve")

    @admin.action(description="Reject selected payouts\u2026")
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Payout]) -> HttpResponse | None:
        """First an intermediate page that asks for the reason (one for all the selected rows); on
        its confirmation, one guarded reject per row. Without a valid reason nothing changes and
        the page asks again, with the refusal as a message."""
        if "_confirm" in request.POST:
            try:
                reason = clean_decision_reason(transition="reject", reason=request.POST.get("reason", ""))
            except DomainError as exc:
                report_error(request, exc)
            else:
                self._bulk(request, queryset, "reject", reason=reason)
                return None
        return self._reject_page(request, queryset)

    def _reject_page(self, request: HttpRequest, queryset: QuerySet[Payout]) -> TemplateResponse:
        ids = _selected_ids(request, queryset)
        context = {
            **self.admin_site.each_context(request),
            "title": "Reject payouts",
            "opts": self.model._meta,
            "payouts": list(Payout.objects.filter(pk__in=ids).select_related("affiliate__user").order_by("pk")),
            "selected_ids": ids,
            "select_across": request.POST.get("select_across", "0"),
            "reason": shown_draft(request.POST.get("reason", "")),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/payouts/payout/reject_selected.html", context)

    @admin.action(description="Cancel selected processing payouts at Wise")
    def cancel_selected_at_wise(self, request: HttpRequest, queryset: QuerySet[Payout]) -> None:
        actor = signed_in_user(request)
        for payout_id in _selected_ids(request, queryset):
            try:
                services.cancel_at_wise(payout_id=payout_id, actor=actor)
            except DomainError as exc:
                report(request, payout_id, exc)
            else:
                self.message_user(request, f"#{payout_id}: Wise accepted the cancellation.", messages.SUCCESS)

    def _bulk(self, request: HttpRequest, queryset: QuerySet[Payout], transition: str, reason: str = "") -> None:
        """One guarded transition per row, from `requested` (the list the reviewer saw), through the
        same service as the change page (authority, dual approval); one line each."""
        actor = signed_in_user(request)
        for payout_id in _selected_ids(request, queryset):
            try:
                payout = services.review_payout(
                    payout_id=payout_id,
                    transition=transition,
                    actor=actor,
                    expected_status=PayoutStatus.REQUESTED,
                    reason=reason,
                )
            except DomainError as exc:
                report(request, payout_id, exc)
            else:
                self.message_user(request, done_text(payout, transition), messages.SUCCESS)
