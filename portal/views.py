"""The affiliate's own pages. Thin: parse, call a selector or service, render. Only the signed-in
affiliate's own objects exist here: anything else, including another affiliate's, is 404 (raised
as NotFound by the selectors; portal.error_pages renders it, DEBUG or not)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from affiliates import selectors as affiliate_selectors
from core.actors import signed_in_user
from core.errors import DomainError
from core.money import format_money
from payouts.services import request_payout
from portal import selectors
from portal.charts import weekly_chart
from portal.forms import AffiliateAuthenticationForm, PayoutRequestForm
from portal.refusals import form_problem, refusal_message


class AffiliateLoginView(LoginView):
    """The affiliates' own sign-in: the admin's login form accepts staff accounts only, and this one
    refuses them. django-axes throttles failed attempts here as on the admin (config/settings.py)."""

    authentication_form = AffiliateAuthenticationForm
    template_name = "portal/login.html"
    redirect_authenticated_user = True


class AffiliateLogoutView(LogoutView):
    next_page = "affiliate-login"


@require_GET
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    data = selectors.dashboard_for(user=request.user, now=timezone.now(), page=request.GET.get("page", 1))
    context = {"d": data, "chart": weekly_chart(data.weekly, currency=data.currency)}
    return render(request, "portal/dashboard.html", context)


@require_POST
@login_required
def request_payout_view(request: HttpRequest) -> HttpResponse:
    affiliate = affiliate_selectors.affiliate_for_user(user=request.user, now=timezone.now())
    form = PayoutRequestForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Payout not requested: {form_problem(form)}")
        return HttpResponseRedirect(reverse("affiliate-dashboard"))
    currency = form.cleaned_data["currency"] or settings.AFFILIATE_CURRENCY
    try:
        payout = request_payout(
            affiliate=affiliate, amount=form.cleaned_data["amount"], currency=currency, actor=signed_in_user(request)
        )
    except DomainError as exc:
        balances = selectors.available_balances(affiliate=affiliate)
        message = refusal_message(exc, balances=balances, requested_currency=currency)
        messages.error(request, f"Payout not requested: {message}")
    else:
        amount = format_money(payout.amount, payout.currency)
        messages.success(request, f"Payout #{payout.pk} of {amount} requested. We will review it shortly.")
    return HttpResponseRedirect(reverse("affiliate-dashboard"))


@require_GET
@login_required
def commission_detail(request: HttpRequest, commission_id: int) -> HttpResponse:
    affiliate = affiliate_selectors.affiliate_for_user(user=request.user, now=timezone.now())
    line = selectors.own_commission(affiliate=affiliate, commission_id=commission_id)
    return render(request, "portal/commission_detail.html", {"line": line, "commission": line.commission})


@require_GET
@login_required
def payout_detail(request: HttpRequest, payout_id: int) -> HttpResponse:
    affiliate = affiliate_selectors.affiliate_for_user(user=request.user, now=timezone.now())
    line = selectors.own_payout(affiliate=affiliate, payout_id=payout_id)
    return render(request, "portal/payout_detail.html", {"line": line, "payout": line.payout})
