from django.apps import AppConfig


class PayoutsConfig(AppConfig):
    name = "payouts"

    def ready(self) -> None:
        from audit.field_trail import track
        from audit.severity import Severity, register_beacon_kind
        from payouts.models import Payout
        from payouts.services.attempts import BOUNCED_AGAIN, PAID_AFTER_FAILURE
        from payouts.services.dispatch import NO_RECIPIENT_SNAPSHOT
        from payouts.services.settlement import PAID_WITHOUT_RESERVATION
        from payouts.thresholds import dual_approval_thresholds

        # A malformed PAYOUT_DUAL_APPROVAL_THRESHOLD stops every process (web, workers, manage.py)
        # with ImproperlyConfigured, instead of weakening the dual-approval rule at the first approval.
        dual_approval_thresholds()
        # The field-change trail records each payout's creation (and any later edit of these).
        track(Payout, fields=["affiliate", "amount", "currency", "requested_by"], money={"amount": "currency"})

        # Money moved where only a human can settle it, or nearly went to an account nobody
        # approved: the first of these alerts, not the fifth.
        for kind in (PAID_AFTER_FAILURE, BOUNCED_AGAIN, PAID_WITHOUT_RESERVATION, NO_RECIPIENT_SNAPSHOT):
            register_beacon_kind(kind, severity=Severity.CRITICAL, subject="payouts.Payout")
