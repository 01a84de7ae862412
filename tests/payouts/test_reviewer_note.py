"""The reviewer's note (Payout.reason) and what Wise reports (Payout.provider_status) are separate
fields: settling a payout (Wise webhook, poller) or a refused dispatch never overwrites the note,
and migration 0007 moves the provider's text out of notes it had overwritten before."""

import importlib
from datetime import datetime
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.test import Client

from audit.models import AuditEntry
from payouts.models import Payout, PayoutStatus
from payouts.services import dispatch_wise_transfer
from tests.factories.accounts import SuperAdminFactory
from tests.factories.affiliates import AffiliateFactory
from tests.factories.payouts import PayoutFactory
from tests.payouts.helpers import deliver, wise_time

pytestmark = pytest.mark.django_db
split_provider_status = importlib.import_module("payouts.migrations.0007_provider_status").split_provider_status


def _change_url(payout: Payout) -> str:
    return f"/admin/payouts/payout/{payout.pk}/change/"


@pytest.fixture
def kerem() -> Client:
    client = Client()
    client.force_login(SuperAdminFactory(username="kerem"))
    return client


def _approve_in_the_admin(client: Client, payout: Payout, reason: str, capture) -> Payout:
    with capture(execute=True):  # the Wise dispatch runs on commit, against the stand-in
        client.post(_change_url(payout), {"_transition": "approve", "_seen_status": "requested", "_reason": reason})
    payout.refresh_from_db()
    return payout


def test_the_reviewers_note_is_unchanged_after_wise_reports_the_payout_paid(
    kerem, wise, django_capture_on_commit_callbacks
):
    # given: kerem approved with a note; the dispatch sent it to Wise
    payout = _approve_in_the_admin(kerem, PayoutFactory(), "checked invoice in_1", django_capture_on_commit_callbacks)
    assert (payout.status, payout.reason, payout.provider_status) == ("processing", "checked invoice in_1", "")

    # when: Wise's webhook says the money went out
    assert deliver(Client(), wise, payout.wise_transfer_id, "outgoing_payment_sent", wise_time(5)).status_code == 200

    # then: paid, the note is kerem's, and Wise's word is in its own field
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.PAID
    assert payout.reason == "checked invoice in_1"
    assert (
        payout.provider_status == f"Wise: outgoing_payment_sent at {datetime.fromisoformat(wise_time(5)).isoformat()}"
    )
    assert payout.provider_status_at == datetime.fromisoformat(wise_time(5))
    # the trail keeps both: kerem's reason on the approval, Wise's text on the settling transition
    trail = dict(AuditEntry.objects.values_list("transition", "reason"))
    assert trail["approve"] == "checked invoice in_1" and trail["mark_paid"] == payout.provider_status
    # and the page shows both, each under its own label
    page = kerem.get(_change_url(payout)).content.decode()
    assert "Reviewer&#x27;s note:</label>" in page and "Status at Wise:</label>" in page
    assert '<div class="readonly">checked invoice in_1</div>' in page
    assert f'<div class="readonly">{payout.provider_status}</div>' in page


def test_a_failure_reported_by_wise_keeps_the_note_too(kerem, wise, django_capture_on_commit_callbacks):
    payout = _approve_in_the_admin(kerem, PayoutFactory(), "ok to pay", django_capture_on_commit_callbacks)

    deliver(Client(), wise, payout.wise_transfer_id, "funds_refunded", wise_time(5))

    payout.refresh_from_db()
    assert (payout.status, payout.reason) == (PayoutStatus.FAILED, "ok to pay")
    assert payout.provider_status.startswith("Wise: funds_refunded at ")


def test_a_refused_dispatch_writes_its_reason_apart_from_the_note(wise):
    payout = PayoutFactory(
        status=PayoutStatus.APPROVED, affiliate=AffiliateFactory(wise_recipient_id=""), reason="approved by phone"
    )

    assert dispatch_wise_transfer(payout_id=payout.pk) == "failed"

    payout.refresh_from_db()
    assert (payout.status, payout.reason) == (PayoutStatus.FAILED, "approved by phone")
    assert "recipient" in payout.provider_status and payout.provider_status_at is not None


def test_a_retry_starts_the_new_attempt_without_the_old_attempts_wise_status(
    kerem, wise, django_capture_on_commit_callbacks
):
    payout = _approve_in_the_admin(kerem, PayoutFactory(), "ok", django_capture_on_commit_callbacks)
    deliver(Client(), wise, payout.wise_transfer_id, "cancelled", wise_time(5))

    kerem.post(_change_url(payout), {"_transition": "retry", "_seen_status": "failed", "_reason": "bank details fixed"})

    payout.refresh_from_db()
    assert (payout.status, payout.attempt, payout.reason) == (PayoutStatus.REQUESTED, 2, "bank details fixed")
    assert (payout.provider_status, payout.provider_status_at) == ("", None)
    assert payout.attempts.get(number=1).wise_state == "cancelled"  # the old attempt keeps its own


# --- migration 0007 --------------------------------------------------------------------------------


def test_the_migration_moves_wise_text_out_of_notes_it_had_overwritten(kerem, wise, django_capture_on_commit_callbacks):
    # given: two paid payouts as the old code left them: the webhook's text written over the note
    # (the audit trail still has both texts) ...
    overwritten = []
    for note in ("invoices match", ""):
        payout = _approve_in_the_admin(
            kerem, PayoutFactory(amount=Decimal("50.00")), note, django_capture_on_commit_callbacks
        )
        deliver(Client(), wise, payout.wise_transfer_id, "outgoing_payment_sent", wise_time(5))
        wise_text = AuditEntry.objects.get(object_id=str(payout.pk), transition="mark_paid").reason
        Payout.objects.filter(pk=payout.pk).update(reason=wise_text, provider_status="", provider_status_at=None)
        overwritten.append((payout, note, wise_text))
    # ... and a paid payout whose note a person wrote after all (not the settling row's text): kept
    kept = _approve_in_the_admin(kerem, PayoutFactory(amount=Decimal("60.00")), "x", django_capture_on_commit_callbacks)
    deliver(Client(), wise, kept.wise_transfer_id, "outgoing_payment_sent", wise_time(6))
    Payout.objects.filter(pk=kept.pk).update(reason="Wise: paid, per phone call", provider_status="")

    # when
    split_provider_status(django_apps, None)

    # then
    for payout, note, wise_text in overwritten:
        payout.refresh_from_db()
        assert (payout.reason, payout.provider_status) == (note, wise_text)
        assert payout.provider_status_at == AuditEntry.objects.get(object_id=str(payout.pk), transition="mark_paid").at
    kept.refresh_from_db()
    assert (kept.reason, kept.provider_status) == ("Wise: paid, per phone call", "")
