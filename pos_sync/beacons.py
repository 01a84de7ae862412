"""The POS sync's beacon kinds that alert on their first occurrence (declared to audit.severity
by PosSyncConfig.ready(); emitted with audit.beacons.emit_beacon)."""

# A job gave up (too many failures, or bad input): the order never reaches the POS unless a human
# requeues it. Details: job_id (the SyncJob), order_id, provider, code, attempts.
DEAD_LETTER = "syncjob_dead_letter"

# Reconcile found many orders at a connection's POS that are not ours but look like ours (the
# look-alikes of pos_sync.providers.ownership: our reference without our metadata, our metadata
# naming another connection...): another system writes there with our references, or the
# connection points at the wrong place. Plain staff orders are not ours too, and normal: they do
# not count. From RECONCILE_NOT_OURS_ALERT_AT look-alikes in one run of one connection, a human
# looks at once. Details: connection_id (the PosConnection), look_alikes, not_ours,
# orders_scanned, since, examples.
RECONCILE_NOT_OURS = "pos_reconcile_not_ours"
RECONCILE_NOT_OURS_ALERT_AT = 10
