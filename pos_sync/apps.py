from django.apps import AppConfig


class PosSyncConfig(AppConfig):
    name = "pos_sync"
    verbose_name = "Restaurant orders (Square)"

    def ready(self) -> None:
        # At start-up, in every process that loads Django (web, Celery workers and beat, manage.py),
        # not as a system check: those run only for some manage.py commands, and the workers are
        # the ones that hold leases.
        from pos_sync.leases import check_claim_lease

        check_claim_lease()
        self._declare_critical_beacons()
        from audit.field_trail import track
        from pos_sync.models import PosConnection

        # Where orders go and with which credentials: the token's changes are recorded, never its value.
        track(PosConnection, fields=["provider", "location_id", "is_active"], hidden=["access_token"])

    def _declare_critical_beacons(self) -> None:
        # A dead letter, or reconcile finding many orders at the POS that are not ours: the first
        # one alerts (audit.severity), naming the job or the connection.
        from audit.severity import Severity, register_beacon_kind
        from pos_sync.beacons import DEAD_LETTER, RECONCILE_NOT_OURS

        register_beacon_kind(DEAD_LETTER, severity=Severity.CRITICAL, subject="pos_sync.SyncJob", subject_key="job_id")
        register_beacon_kind(
            RECONCILE_NOT_OURS,
            severity=Severity.CRITICAL,
            subject="pos_sync.PosConnection",
            subject_key="connection_id",
        )
