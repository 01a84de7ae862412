from django.urls import path

from payouts import apis

urlpatterns = [
    path("api/payouts/", apis.PayoutListApi.as_view(), name="payout-list"),
    path("api/payouts/<int:payout_id>/", apis.PayoutDetailApi.as_view(), name="payout-detail"),
    path("api/payouts/<int:payout_id>/approve/", apis.PayoutApproveApi.as_view(), name="payout-approve"),
    path("api/payouts/<int:payout_id>/reject/", apis.PayoutRejectApi.as_view(), name="payout-reject"),
    path("api/payouts/<int:payout_id>/cancel/", apis.PayoutCancelApi.as_view(), name="payout-cancel"),
    path("api/payouts/<int:payout_id>/retry/", apis.PayoutRetryApi.as_view(), name="payout-retry"),
    path("api/wise/webhook/", apis.WiseWebhookApi.as_view(), name="wise-webhook"),
]
