"""The transition helper's cached UPDATE (audit.transitions._guarded_update) sends exactly the SQL
Django's ORM sends, and falls back to the ORM for what it does not cache."""

import re

import pytest
from django.db import connection
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.test.utils import CaptureQueriesContext

from audit import transitions
from audit.models import AuditEntry
from audit.transitions import apply_transition
from bench.primitives.models import Ticket
from core.actors import SystemActor
from tests.factories.accounts import SuperAdminFactory
from tests.factories.payouts import PayoutFactory

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("proof")


def _update_sent(run) -> str:
    with CaptureQueriesContext(connection) as captured:
        run()
    updates = [q["sql"] for q in captured if q["sql"].startswith("UPDATE")]
    assert len(updates) == 1, updates
    return updates[0]


def test_the_cached_update_is_the_orms_update_for_every_row_of_a_shape():
    transitions._UPDATE_SQL.clear()  # start cold: the first call must compile through the ORM
    tickets = [Ticket.objects.create() for _ in range(3)]
    sent = [
        _update_sent(
            lambda t=t: apply_transition(instance=t, transition="approve", actor=SYSTEM, changes={"decided_by": "ana"})
        )
        for t in tickets
    ]
    # The first went through the ORM and taught the cache its shape, the others used the cache.
    assert list(transitions._UPDATE_SQL) == [(Ticket, "default", (("status", False), ("decided_by", False)))]
    same = {re.sub(rf'"id" = {t.pk}\b', '"id" = <pk>', sql) for t, sql in zip(tickets, sent, strict=True)}
    assert len(same) == 1, same
    assert list(Ticket.objects.order_by("pk").values_list("status", "decided_by")) == [("approved", "ana")] * 3
    assert AuditEntry.objects.count() == 3


def test_null_and_non_null_values_are_different_shapes():
    admin = SuperAdminFactory()
    by_person, by_nobody = PayoutFactory(), PayoutFactory()
    apply_transition(instance=by_person, transition="reject", actor=admin, changes={"reviewed_by": admin})
    apply_transition(instance=by_nobody, transition="reject", actor=admin, changes={"reviewed_by": None})
    again = PayoutFactory()
    apply_transition(instance=again, transition="reject", actor=admin, changes={"reviewed_by": admin})

    reviewers = {p.pk: p.reviewed_by_id for p in type(by_person).objects.all()}
    assert reviewers == {by_person.pk: admin.pk, by_nobody.pk: None, again.pk: admin.pk}


def test_expressions_always_go_through_the_orm():
    first, second = Ticket.objects.create(title="a"), Ticket.objects.create(title="b")
    for ticket in (first, second):
        apply_transition(
            instance=ticket,
            transition="reject",
            actor=SYSTEM,
            changes={"decided_by": Concat(F("title"), Value("!"))},
        )
    assert list(Ticket.objects.order_by("pk").values_list("status", "decided_by")) == [
        ("rejected", "a!"),
        ("rejected", "b!"),
    ]
