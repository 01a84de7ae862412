from django.db import models


class AffiliateErrorCode(models.TextChoices):
    NOT_AN_AFFILIATE = "not_an_affiliate"
    AFFILIATE_NOT_FOUND = "affiliate_not_found"
    COMMISSION_NOT_FOUND = "commission_not_found"
    INVALID_STRIPE_PAYLOAD = "invalid_stripe_payload"
    COMMISSION_DISPUTED = "commission_disputed"
    UNMATCHED_STRIPE_OBJECT = "unmatched_stripe_object"
