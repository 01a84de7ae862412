from django.urls import path

from portal import apis, views

urlpatterns = [
    path("affiliate/login/", views.AffiliateLoginView.as_view(), name="affiliate-login"),
    path("affiliate/logout/", views.AffiliateLogoutView.as_view(), name="affiliate-logout"),
    path("affiliate/", views.dashboard, name="affiliate-dashboard"),
    path("affiliate/payouts/", views.request_payout_view, name="affiliate-request-payout"),
    path("affiliate/payouts/<int:payout_id>/", views.payout_detail, name="affiliate-payout"),
    path("affiliate/commissions/<int:commission_id>/", views.commission_detail, name="affiliate-commission"),
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
