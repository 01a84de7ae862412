from django.urls import path

from audit.apis import StripeWebhookApi

urlpatterns = [
    path("stripe/webhook/", StripeWebhookApi.as_view(), name="stripe-webhook"),
]
