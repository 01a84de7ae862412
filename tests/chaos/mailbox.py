"""An email backend for the child processes: one JSON file per message in $CHAOS_MAILBOX, so the
test process can count what every worker really sent (locmem would stay inside each child)."""

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage


class EmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        folder = Path(os.environ["CHAOS_MAILBOX"])
        for message in email_messages:
            record = {"subject": message.subject, "to": list(message.to), "body": message.body, "pid": os.getpid()}
            temporary = folder / f".{uuid.uuid4().hex}.tmp"
            temporary.write_text(json.dumps(record))
            temporary.rename(folder / f"{uuid.uuid4().hex}.json")  # atomic: a reader never sees half a message
        return len(email_messages)
