from django.apps import AppConfig


class AffiliatesConfig(AppConfig):
    name = "affiliates"

    def ready(self) -> None:
        from affiliates import webhooks  # noqa: F401  (registers the Stripe event handlers)
