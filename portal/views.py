"""The affiliate's own pages. Thin: parse, call a selector or service, render. Only the signed-in
affiliate's own objects exist here: anything else, including another affiliate's, is 404."""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, LogoutView
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from affiliates import selectors as affiliate_selectors
from core.actors import signed_in_user
from core.admin_messages import report_error
from core.errors import DomainError, NotFound
from payouts.services import request_payout
from portal import selectors
from portal.charts import weekly_chart
from portal.forms import AffiliateAuthenticationForm, PayoutRequestForm


class AffiliateLoginView(LoginView):
    """The affiliates' own sign-in: the admin's login form accepts staff accounts only, and this one
    refuses them. django-axes throttles failed attempts here as on the admin (config/settings.py)."""

    authentication_form = AffiliateAuthenticationForm
    template_name = "portal/login.html"
    redirect_authenticated_user = True


class AffiliateLogoutView(LogoutView):
    next_page = "affiliate-login"


def _or_404(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except NotFound as exc:
        raise Http404(exc.message) from exc


@require_GET
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    data = _or_404(
        lambda: selectors.dashboard_for(user=request.user, now=timezone.now(), page=request.GET.get("page", 1))
    )
    context = {"d": data, "chart": weekly_chart(data.weekly), "form": PayoutRequestForm()}
    return render(request, "portal/dashboard.html", context)


@require_POST
@login_required
def request_payout_view(request: HttpRequest) -> HttpResponse:
    affiliate = _or_404(lambda: affiliate_selectors.affiliate_for_user(user=request.user, now=timezone.now()))
    form = PayoutRequestForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter an amount of at least 0.01 with at most 2 decimal places.")
        return HttpResponseRedirect(reverse("affiliate-dashboard"))
    try:
        payout = request_payout(
            affiliate=affiliate,
            amount=form.cleaned_data["amount"],
            currency=settings.AFFILIATE_CURRENCY,
            actor=signed_in_user(request),
        )
    except DomainError as exc:
        report_error(request, exc, prefix="Payout not requested: ")
    else:
        messages.success(request, f"Payout #{payout.pk} of {payout.amount} {payout.currency} requested.")
    return HttpResponseRedirect(reverse("affiliate-dashboard"))


@require_GET
@login_required
def commission_detail(request: HttpRequest, commission_id: int) -> HttpResponse:
    def read() -> Any:
        affiliate = affiliate_selectors.affiliate_for_user(user=request.user, now=timezone.now())
        return affiliate_selectors.commission_for(affiliate=affiliate, commission_id=commission_id)

    return render(request, "portal/commission_detail.html", {"commission": _or_404(read)})


@require_GET
@login_required
def payout_detail(request: HttpRequest, payout_id: int) -> HttpResponse:
    def read() -> Any:
        affiliate = affiliate_selectors.affiliate_for_user(user=request.user, now=timezone.now())
        return selectors.payout_for(affiliate=affiliate, payout_id=payout_id)

    return render(request, "portal/payout_detail.html", {"payout": _or_404(read)})
