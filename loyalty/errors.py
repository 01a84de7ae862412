"""The loyalty app's error codes, beside the codes Stripe itself answers (which StripeRefused carries)."""

from django.db import models


class LoyaltyErrorCode(models.TextChoices):
    # Our promotion code exists at Stripe but someone deactivated it: making another would be a second code.
    OWN_CODE_INACTIVE = "own_code_inactive"
