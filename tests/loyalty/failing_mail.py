"""An email backend whose SMTP server is down (a real backend, not a mock of our code)."""

from django.core.mail.backends.base import BaseEmailBackend


class FailingBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionError("SMTP server unreachable")
