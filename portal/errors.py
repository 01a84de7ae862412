from django.db import models


class PortalErrorCode(models.TextChoices):
    PAYOUT_NOT_FOUND = "payout_not_found"
