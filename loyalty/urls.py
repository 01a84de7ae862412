from django.urls import path

from loyalty.apis import DiscountListApi, DiscountRevokeApi

urlpatterns = [
    path("api/loyalty/discounts/", DiscountListApi.as_view(), name="loyalty-discounts"),
    path(
        "api/loyalty/discounts/<int:discount_id>/revoke/", DiscountRevokeApi.as_view(), name="loyalty-discount-revoke"
    ),
]
