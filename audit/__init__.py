"""audit: the guarded transition helper, the audit trail, race beacons and their alerts.

Owns `apply_transition` / `apply_transition_to` (legality from django-fsm, one guarded UPDATE, the
`transition_committed` signal, the codes it refuses with in errors.AuditErrorCode), the AuditEntry
trail and its receiver (same transaction), the `[BEACON:...]` counters, the registry of beacon
severities that the owning apps declare into (severity) and the alert job, the system check
that every money model's status field is protected and audited, and the drawing of a state field's
declared machine (state_diagram: inline SVG) with the admin mixin that puts it on each change page
(admin_mixins.StateDiagramAdminMixin).

Imports: core only. It must not import webhooks, any domain app, portal or config.
"""
