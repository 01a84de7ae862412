from django.urls import URLPattern, path

from portal import apis, views
from portal.error_pages import View, friendly_errors, page_not_found


def page(route: str, view: View, name: str | None = None) -> URLPattern:
    """A portal page: its 404, 403 and 500 are the friendly pages, DEBUG or not (portal.error_pages)."""
    return path(route, friendly_errors(view), name=name)


urlpatterns = [
    page("affiliate/login/", views.AffiliateLoginView.as_view(), name="affiliate-login"),
    page("affiliate/logout/", views.AffiliateLogoutView.as_view(), name="affiliate-logout"),
    page("affiliate/", views.dashboard, name="affiliate-dashboard"),
    page("affiliate/payouts/", views.request_payout_view, name="affiliate-request-payout"),
    page("affiliate/payouts/<int:payout_id>/", views.payout_detail, name="affiliate-payout"),
    page("affiliate/commissions/<int:commission_id>/", views.commission_detail, name="affiliate-commission"),
    # Last of the pages. Ends in a slash, so APPEND_SLASH still redirects /affiliate/payouts/7 first.
    page("affiliate/<path:unknown>/", page_not_found),
    path("api/affiliates/me/", apis.AffiliateMeApi.as_view(), name="api-affiliate-me"),
    path("api/affiliates/me/commissions/", apis.AffiliateCommissionListApi.as_view(), name="api-affiliate-commissions"),
    path(
        "api/affiliates/me/commissions/<int:commission_id>/",
        apis.AffiliateCommissionDetailApi.as_view(),
        name="api-affiliate-commission",
    ),
    path(
        "api/affiliates/me/payouts/<int:payout_id>/",
        apis.AffiliatePayoutDetailApi.as_view(),
        name="api-affiliate-payout",
    ),
]
