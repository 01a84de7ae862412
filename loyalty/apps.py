from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"

    def ready(self) -> None:
        # Registers the customer.subscription.* handlers on the shared Stripe webhook pipeline.
        from loyalty import webhooks  # noqa: F401
