"""A forged invoice.paid, signed with a secret this repository publishes, through the real endpoint.

Start-up refuses those secrets with DEBUG off (tests/config/test_settings.py); the ingress refuses
them too outside the demo (settings.ALLOW_PUBLISHED_DEFAULTS), whatever switched DEBUG off.
"""

import pytest

from affiliates.models import Commission
from audit.models import AuditEntry
from core.published_defaults import PUBLISHED_DEFAULTS
from tests.affiliates.events import invoice_paid
from tests.factories.affiliates import ReferralFactory
from tests.stripe_signing import post_stripe_event
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def referral():
    return ReferralFactory(stripe_customer_id="cus_resto", affiliate__commission_rate=20)


def _forge(client, *, secret: str):
    """What anyone who read this repository can send: a well-formed, correctly signed paid invoice."""
    return post_stripe_event(
        client, invoice_paid("evt_forged", invoice_id="in_forged", customer="cus_resto"), secret=secret
    )


@pytest.mark.parametrize("published", sorted(set(PUBLISHED_DEFAULTS.values())))
def test_outside_the_demo_an_event_signed_with_a_published_secret_is_refused(client, settings, referral, published):
    # given: production, except that the webhook secret is a published value (DEBUG went off after start-up)
    settings.ALLOW_PUBLISHED_DEFAULTS = False
    settings.STRIPE_WEBHOOK_SECRET = published

    # when
    response = _forge(client, secret=published)

    # then: refused before the signature is even believed; nothing is recorded
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_signature"
    assert "published sandbox value" in str(response.json()["detail"])
    assert not WebhookEvent.objects.exists() and not Commission.objects.exists() and not AuditEntry.objects.exists()


def test_the_default_whsec_sandbox_is_what_the_demo_runs_on_and_what_production_refuses(client, settings, referral):
    assert settings.STRIPE_WEBHOOK_SECRET == "whsec_sandbox"  # the demo's default, which the tests load

    settings.ALLOW_PUBLISHED_DEFAULTS = False
    assert _forge(client, secret="whsec_sandbox").status_code == 400

    settings.ALLOW_PUBLISHED_DEFAULTS = True  # the demo: the stand-in signs with it
    accepted = _forge(client, secret="whsec_sandbox")
    assert (accepted.status_code, accepted.json()["outcome"]) == (200, "processed")
    assert Commission.objects.get().stripe_invoice_id == "in_forged"


def test_outside_the_demo_an_event_signed_with_our_own_secret_is_processed(client, settings, referral):
    settings.ALLOW_PUBLISHED_DEFAULTS = False
    settings.STRIPE_WEBHOOK_SECRET = "whsec_ours_and_nobody_elses"

    assert _forge(client, secret="whsec_sandbox").status_code == 400  # the published one proves nothing here
    response = _forge(client, secret="whsec_ours_and_nobody_elses")

    assert (response.status_code, response.json()["outcome"]) == (200, "processed")
    assert Commission.objects.get().stripe_invoice_id == "in_forged"
