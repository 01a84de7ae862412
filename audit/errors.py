"""The audit app's error codes: what the transition helper answers when a transition is misused."""

from django.db import models


class AuditErrorCode(models.TextChoices):
    UNKNOWN_STATE = "unknown_state"
    UNKNOWN_TRANSITION = "unknown_transition"
    MISSING_ACTOR = "missing_actor"
    # A django-fsm condition that refused without naming its code through @condition.
    CONDITION_NOT_MET = "condition_not_met"
