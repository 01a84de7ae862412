"""audit: the guarded transition helper, the audit trail, race beacons and their alerts.

Owns `apply_transition` / `apply_transition_to` (legality from django-fsm, one guarded UPDATE, the
`transition_committed` signal, the codes it refuses with in errors.AuditErrorCode), the AuditEntry
trail and its receiver (same transaction), the `[BEACON:...]` counters, the registry of beacon
severities that the owning apps declare into (severity) and the alert job, and the system check
that every money model's status field is protected and audited.

Imports: core only. It must not import webhooks, any domain app, portal or config.
"""
