from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = "Loyalty discounts (Pro subscriptions)"

    def ready(self) -> None:
        # Registers the customer.subscription.* handlers on the shared Stripe webhook pipeline.
        from loyalty import webhooks  # noqa: F401
