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

        from audit.severity import Severity, register_beacon_kind

        # The kinds that reach audit through core.signals.beacon_requested, from apps that may not
        # import audit and so cannot declare them: ledger.checks.LEDGER_CHECK_FAILED, the books out
        # of balance (tests/ledger/test_checks.py pins the name).
        register_beacon_kind(
            "ledger_check_failed", severity=Severity.CRITICAL, subject="ledger.Account", subject_key="account_id"
        )
        # audit.chain.AUDIT_TRAIL_BROKEN: an audit row edited, inserted or deleted outside the receiver.
        register_beacon_kind("audit_trail_broken", severity=Severity.CRITICAL)
        self._connect_field_trail()

    def _connect_field_trail(self) -> None:
        from django.db import connections
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        from audit.field_trail import attach_context_source, install_triggers

        # Every connection tells the trail's triggers who acts; every migrate (re)installs them
        # from the apps' track() declarations, which their ready() made before any migrate runs.
        connection_created.connect(
            lambda connection, **_: attach_context_source(connection), weak=False, dispatch_uid="audit.field_trail"
        )
        post_migrate.connect(
            lambda using, **_: install_triggers(connections[using]),
            sender=self,
            weak=False,
            dispatch_uid="audit.field_trail_install",
        )
