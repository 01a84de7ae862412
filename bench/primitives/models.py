"""A model that exercises the shared transition helper without any domain rules: installed only by
config.settings_test, for the tests (tests/audit, tests/proof) and the benchmarks (bench/transitions.py)."""

from django.db import models
from django_fsm import ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition

from audit.transitions import condition


class TicketStatus(models.TextChoices):
    OPEN = "open"
    APPROVED = "approved"
    REJECTED = "rejected"
    CLOSED = "closed"


@condition("not_signed_off", "The ticket needs a sign-off first.")
def is_signed_off(ticket: "Ticket") -> bool:
    return ticket.signed_off


class Ticket(FSMModelMixin, models.Model):
    title = models.CharField(max_length=100, default="ticket")
    signed_off = models.BooleanField(default=True)
    status = FSMField(choices=TicketStatus.choices, default=TicketStatus.OPEN, protected=True)
    decided_by = models.CharField(max_length=150, blank=True)

    class Meta:
        permissions = [("close_ticket", "Can close tickets")]

    def __str__(self) -> str:
        return self.title

    @transition(field=status, source=TicketStatus.OPEN, target=TicketStatus.APPROVED, conditions=[is_signed_off])
    def approve(self) -> None:
        pass

    @transition(field=status, source=TicketStatus.OPEN, target=TicketStatus.REJECTED)
    def reject(self) -> None:
        pass

    @transition(
        field=status,
        source=[TicketStatus.APPROVED, TicketStatus.REJECTED],
        target=TicketStatus.CLOSED,
        permission="primitives.close_ticket",
    )
    def close(self) -> None:
        pass


class ConcurrentTicket(ConcurrentTransitionMixin, models.Model):
    """The same machine on django-fsm's ConcurrentTransitionMixin, for the benchmark's comparison."""

    status = FSMField(choices=TicketStatus.choices, default=TicketStatus.OPEN, protected=True)

    def __str__(self) -> str:
        return f"concurrent ticket {self.pk}"

    @transition(field=status, source=TicketStatus.OPEN, target=TicketStatus.APPROVED)
    def approve(self) -> None:
        pass
