from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail and race safety"

    def ready(self) -> None:
        import audit.checks  # noqa: F401  (registers the FSM-field system check for manage.py check)
        from audit import receivers  # noqa: F401  (connects the audit-row and task-context receivers)
        from audit.beacons import flush_pending_beacons
        from core.transactions import on_unit_of_work_exit

        # A lost race's counter is queued inside the transaction it rolls back: core's atomic(),
        # the API error handler and the admin's error messages flush it once the work has ended.
        on_unit_of_work_exit(flush_pending_beacons)
