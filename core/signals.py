from django.dispatch import Signal

# Sent by core.enqueue when the broker refused a task (it was down or unreachable). Arguments:
# task_name, args. audit turns it into a beacon, so a lost enqueue is counted and alerted on,
# never silent; the sweeper beat job of the task's domain repairs it later.
enqueue_failed = Signal()
