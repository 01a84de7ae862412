from django.apps import AppConfig


class PosSyncConfig(AppConfig):
    name = "pos_sync"

    def ready(self) -> None:
        # At start-up, in every process that loads Django (web, Celery workers and beat, manage.py),
        # not as a system check: those run only for some manage.py commands, and the workers are
        # the ones that hold leases.
        from pos_sync.leases import check_claim_lease

        check_claim_lease()
        self._declare_critical_beacons()

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
