from django.apps import AppConfig


class AffiliatesConfig(AppConfig):
    name = "affiliates"
    verbose_name = "Affiliates and commissions"

    def ready(self) -> None:
        from django.conf import settings

        from affiliates import webhooks  # noqa: F401  (registers the Stripe event handlers)
        from affiliates.models import Affiliate, Commission, Referral, Tier
        from audit.field_trail import track

        # The field-change trail (audit.field_trail): where an affiliate's money goes and what
        # allows it to move, who owns a referred customer, what a tier pays, what a commission is.
        track(Affiliate, fields=["kyc_status", "wise_recipient_id", "commission_rate"])
        track(Referral, fields=["affiliate", "stripe_customer_id"])
        track(Tier, fields=["name", "commission_rate", "threshold"], money={"threshold": settings.AFFILIATE_CURRENCY})
        track(
            Commission,
            fields=["affiliate", "stripe_invoice_id", "amount", "currency", "rate"],
            money={"amount": "currency"},
        )
