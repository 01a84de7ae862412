"""The audit trail's changelist for finance staff: each row links to its record and its person (a
system job is named, not linked), the type filter offers only audited models, and nothing can be
edited."""

import re
from html import unescape

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils.html import escape

from affiliates.models import Commission, CommissionStatus
from audit.checks import fsm_state_fields
from audit.models import AuditEntry
from audit.transitions import apply_transition
from core.actors import SystemActor
from tests.factories.affiliates import CommissionFactory
from tests.factories.pos_sync import OrderFactory, SyncJobFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/audit/auditentry/"
REQUEST_ID = "req-6f1c2a9d0b7e4c35a1e2f3a4b5c6d7e8"


@pytest.fixture
def trail(superuser):
    """A commission approved by a person, and a sync job failed by a system job."""
    commission = CommissionFactory()
    apply_transition(instance=commission, transition="approve", actor=superuser, reason="invoice checked")
    job = SyncJobFactory(order=OrderFactory(status="closed"))
    apply_transition(instance=job, transition="fail", actor=SystemActor("task:push_pending_orders"))
    AuditEntry.objects.filter(object_id=str(commission.pk), transition="approve").update(correlation_id=REQUEST_ID)
    return commission, job


def rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr.*?</tr>", body, flags=re.S)


def test_each_row_links_to_its_record_and_a_person_to_their_user_page(client, superuser, trail):
    commission, job = trail
    client.force_login(superuser)

    page = client.get(CHANGELIST)

    assert page.status_code == 200
    by_record = {}
    for row in rows(page.content.decode()):
        links = dict((unescape(text), href) for href, text in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', row))
        by_record[next(text for text in links if "#" in text)] = (row, links)
    commission_row, commission_links = by_record[f"Commission #{commission.pk}"]
    assert commission_links[f"Commission #{commission.pk}"] == reverse(
        "admin:affiliates_commission_change", args=[commission.pk]
    )
    assert commission_links["kerem"] == reverse("admin:auth_user_change", args=[superuser.pk])
    pending, approved = (escape(CommissionStatus(s).label) for s in ("pending", "approved"))
    assert "Approve" in commission_row and f"{pending} &rarr; {approved}" in commission_row
    job_row, job_links = by_record[f"Sync job #{job.pk}"]
    assert job_links[f"Sync job #{job.pk}"] == reverse("admin:pos_sync_syncjob_change", args=[job.pk])
    # a system actor is plain text: no link to a user page
    assert "System" in job_row and "push pending orders (task)" in job_row
    assert "/admin/auth/user/" not in job_row


def test_a_long_request_id_is_shortened_with_its_full_value_in_the_tooltip_and_filters_by_it(client, superuser, trail):
    commission, _job = trail
    client.force_login(superuser)

    html = client.get(CHANGELIST).content.decode()

    cells = re.findall(r'<td class="field-reference">(.*?)</td>', html, flags=re.S)
    cell = next(c for c in cells if REQUEST_ID in c)
    assert f'title="{REQUEST_ID} (show every change it made)"' in cell
    assert f">{REQUEST_ID}<" not in cell  # the cell shows a short form only
    filtered = client.get(f"{CHANGELIST}?correlation_id={REQUEST_ID}").content.decode()
    assert [f"Commission #{commission.pk}" in row for row in rows(filtered)] == [True]


def test_the_type_filter_offers_only_audited_models_once_each(client, superuser, trail):
    client.force_login(superuser)

    html = client.get(CHANGELIST).content.decode()

    section = html.split('id="changelist-filter"', 1)[1].split("</details>", 1)[0]
    offered = [unescape(name) for name in re.findall(r'\?record_type=\d+"[^>]*>([^<]+)</a>', section)]
    audited = {ContentType.objects.get_for_model(model) for model, _ in fsm_state_fields() if not model._meta.proxy}
    expected = {ct.pk for ct in audited} | set(AuditEntry.objects.values_list("content_type_id", flat=True))
    offered_ids = {int(pk) for pk in re.findall(r"\?record_type=(\d+)", section)}
    assert offered_ids == expected
    assert len(offered) == len(set(offered)) == len(expected)
    assert {"Commission", "Payout", "Sync job", "Loyalty discount"} <= set(offered)
    assert not {"Token", "Auth Token | Token", "Permission", "Content type"} & set(offered)


def test_the_type_filter_narrows_the_rows(client, superuser, trail):
    client.force_login(superuser)
    commission_type = ContentType.objects.get_for_model(Commission)

    html = client.get(f"{CHANGELIST}?record_type={commission_type.pk}").content.decode()

    assert [("Commission #" in row, "Sync job #" in row) for row in rows(html)] == [(True, False)]


def test_an_entry_page_shows_the_record_person_and_whole_fingerprint_and_edits_nothing(client, superuser, trail):
    commission, _job = trail
    entry = AuditEntry.objects.get(object_id=str(commission.pk), transition="approve")
    client.force_login(superuser)

    page = client.get(f"{CHANGELIST}{entry.pk}/change/")

    html = page.content.decode()
    assert page.status_code == 200
    assert entry.hash and entry.hash in html
    assert reverse("admin:affiliates_commission_change", args=[commission.pk]) in html
    assert reverse("admin:auth_user_change", args=[superuser.pk]) in html
    assert 'name="_save"' not in html
    assert client.post(f"{CHANGELIST}{entry.pk}/change/", {"reason": "rewritten"}).status_code == 403
    assert client.post(f"{CHANGELIST}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert entry.reason == "invoice checked"
