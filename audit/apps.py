from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail and race safety"

    def ready(self) -> None:
        from audit import receivers  # noqa: F401  (connects the audit-row and task-context receivers)
