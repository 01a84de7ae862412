from django.dispatch import Signal

# Sent by core.enqueue when the broker refused a task (it was down or unreachable). Arguments:
# task_name, args. audit turns it into a beacon, so a lost enqueue is counted and alerted on,
# never silent; the sweeper beat job of the task's domain repairs it later.
enqueue_failed = Signal()

# Sent by code that may not import audit (the ledger: it imports core only) to raise a beacon.
# Arguments: kind, details (a dict). audit's receiver emits it like any other; the kind's severity
# is declared in audit.severity's registry like any other.
beacon_requested = Signal()
