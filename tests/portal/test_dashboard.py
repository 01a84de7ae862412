"""The affiliate's tier dashboard (/affiliate/) and its JSON twin (/api/affiliates/me/)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from affiliates.models import Commission, TierEvent
from payouts.models import Payout
from tests.factories.accounts import UserFactory
from tests.factories.affiliates import AffiliateFactory, CommissionFactory, TierEventFactory
from tests.factories.payouts import hold_in_books, post_earned

pytestmark = pytest.mark.django_db


def signed_in(affiliate) -> Client:
    client = Client()
    client.force_login(affiliate.user)
    return client


def spread_over_90_days(affiliate, count: int, *, status: str = "pending") -> None:
    """`count` commissions of 10.00 spread over the window (one query, so 500 are quick)."""
    now = timezone.now()
    Commission.objects.bulk_create(
        CommissionFactory.build(
            affiliate=affiliate,
            amount=Decimal("10.00"),
            status=status,
            stripe_invoice_id=f"in_{affiliate.pk}_{i}",
        )
        for i in range(count)
    )
    for days in range(0, 90, 7):  # a handful of UPDATEs whatever the count: bucket by id
        Commission.objects.filter(affiliate=affiliate, stripe_invoice_id__endswith=f"_{days}").update(
            created_at=now - timedelta(days=days)
        )


@pytest.fixture
def alice():
    affiliate = AffiliateFactory(user__username="alice", commission_rate=25)
    earned = CommissionFactory(
        affiliate=affiliate, stripe_invoice_id="in_alice_1", amount=Decimal("1000.00"), status="approved"
    )
    post_earned(earned)  # the balance is read from the books
    CommissionFactory(affiliate=affiliate, stripe_invoice_id="in_alice_2", amount=Decimal("600.00"))
    TierEventFactory(affiliate=affiliate, from_rate=20, to_rate=25, tier_name="Gold", cause="alice promo")
    TierEventFactory(affiliate=affiliate, from_rate=20, to_rate=25, tier_name="Gold", status="superseded", cause="dup")
    hold_in_books(Payout.objects.create(affiliate=affiliate, amount=Decimal("100.00"), currency="USD"), fund=False)
    return affiliate


@pytest.fixture
def bob():
    affiliate = AffiliateFactory(user__username="bob", commission_rate=20)
    CommissionFactory(affiliate=affiliate, stripe_invoice_id="in_bob_secret", amount=Decimal("300.00"))
    TierEventFactory(affiliate=affiliate, from_rate=25, to_rate=20, tier_name="Bronze", cause="bob demo")
    Payout.objects.create(affiliate=affiliate, amount=Decimal("77.77"), currency="USD")
    return affiliate


def test_dashboard_shows_tier_progress_chart_history_commissions_payouts_balance_and_form(alice, bob):
    response = signed_in(alice).get("/affiliate/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Gold &middot; 25%" in page
    assert "$1,600.00 in commissions over the last 90 days" in page
    assert "You are in the top tier." in page
    assert page.count('<rect class="week"') in (13, 14)  # the ISO weeks the 90-day window touches
    assert "Promoted to Gold (20% &rarr; 25%)" in page and page.count("Promoted to Gold") == 1  # superseded hidden
    assert "in_alice_1" in page and "in_alice_2" in page
    assert "$900.00" in page  # approved 1,000.00 minus the requested payout of 100.00
    assert 'action="/affiliate/payouts/"' in page and "csrfmiddlewaretoken" in page
    assert "in_bob_secret" not in page and "77.77" not in page and "bob demo" not in page


def test_progress_bar_toward_the_next_tier(bob):
    page = signed_in(bob).get("/affiliate/").content.decode()
    assert "Bronze &middot; 20%" in page
    assert 'aria-valuenow="20"' in page and "width: 20%" in page  # 300 of 1,500
    assert "$1,200.00 to go" in page


def test_api_me_returns_the_same_data_as_json(alice, bob):
    data = signed_in(alice).get("/api/affiliates/me/").json()

    assert data["affiliate"] == {"id": alice.pk, "username": "alice", "commission_rate": 25, "kyc_status": "verified"}
    assert data["progress"]["current"]["name"] == "Gold" and data["progress"]["next"] is None
    assert data["progress"]["window_total"] == "1600.00"
    assert len(data["weekly"]) in (13, 14) and sum(Decimal(w["total"]) for w in data["weekly"]) == Decimal("1600.00")
    assert [(e["from_rate"], e["to_rate"], e["is_promotion"]) for e in data["tier_history"]] == [(20, 25, True)]
    assert data["commissions"]["count"] == 2
    assert {c["stripe_invoice_id"] for c in data["commissions"]["results"]} == {"in_alice_1", "in_alice_2"}
    assert [(p["amount"], p["status"]) for p in data["payouts"]] == [("100.00", "requested")]
    assert data["available_balance"] == "900.00" and data["currency"] == "USD"


def test_another_affiliates_objects_are_404_on_pages_and_json(alice, bob):
    client = signed_in(alice)
    bobs_commission = Commission.objects.get(affiliate=bob)
    bobs_payout = Payout.objects.get(affiliate=bob)
    own_commission = Commission.objects.filter(affiliate=alice).first()
    own_payout = Payout.objects.get(affiliate=alice)

    for url in (
        f"/affiliate/commissions/{bobs_commission.pk}/",
        f"/affiliate/payouts/{bobs_payout.pk}/",
        f"/api/affiliates/me/commissions/{bobs_commission.pk}/",
        f"/api/affiliates/me/payouts/{bobs_payout.pk}/",
        "/affiliate/commissions/999999/",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"in_bob_secret" not in response.content and b"77.77" not in response.content
    assert client.get(f"/api/affiliates/me/commissions/{bobs_commission.pk}/").json()["error"] == "commission_not_found"

    assert client.get(f"/affiliate/commissions/{own_commission.pk}/").status_code == 200
    assert client.get(f"/affiliate/payouts/{own_payout.pk}/").status_code == 200
    assert client.get(f"/api/affiliates/me/commissions/{own_commission.pk}/").json()["id"] == own_commission.pk
    assert client.get(f"/api/affiliates/me/payouts/{own_payout.pk}/").json()["amount"] == "100.00"
    listed = client.get("/api/affiliates/me/commissions/").json()
    assert listed["count"] == 2 and "in_bob_secret" not in str(listed)
    # and B sees only B
    assert signed_in(bob).get(f"/affiliate/commissions/{own_commission.pk}/").status_code == 404


def test_anonymous_and_non_affiliate_users_get_nothing(alice):
    anonymous = Client()
    assert anonymous.get("/affiliate/").url.startswith("/affiliate/login/?next=/affiliate/")
    assert anonymous.get("/api/affiliates/me/").status_code in (401, 403)
    stranger = Client()
    stranger.force_login(UserFactory(username="stranger"))
    assert stranger.get("/affiliate/").status_code == 404
    response = stranger.get("/api/affiliates/me/")
    assert (response.status_code, response.json()["error"]) == (404, "not_an_affiliate")


def test_payout_form_goes_through_the_payouts_rules(alice):
    client = signed_in(alice)

    ok = client.post("/affiliate/payouts/", {"amount": "250.00"}, follow=True)
    too_much = client.post("/affiliate/payouts/", {"amount": "5000.00"}, follow=True)
    garbage = client.post("/affiliate/payouts/", {"amount": "-3"}, follow=True)

    messages = [str(m) for r in (ok, too_much, garbage) for m in r.context["messages"]]
    assert any("requested" in m and "$250.00" in m for m in messages)
    assert any("exceeds your available balance of $650.00" in m for m in messages)  # 900.00 - 250.00
    assert any("Enter an amount greater than zero." in m for m in messages)
    assert sorted(Payout.objects.filter(affiliate=alice).values_list("amount", flat=True)) == [
        Decimal("100.00"),
        Decimal("250.00"),
    ]
    assert client.get("/affiliate/payouts/").status_code == 405


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_query_count_does_not_grow_with_commissions_events_or_payouts():
    small, large = AffiliateFactory(), AffiliateFactory()
    spread_over_90_days(small, 5)
    spread_over_90_days(large, 500, status="approved")
    TierEventFactory.create_batch(2, affiliate=small)
    TierEventFactory.create_batch(60, affiliate=large)
    Payout.objects.create(affiliate=small, amount=Decimal("1.00"), currency="USD")
    Payout.objects.bulk_create(Payout(affiliate=large, amount=Decimal("1.00"), currency="USD") for _ in range(40))

    counts = {}
    for name, affiliate in (("small", small), ("large", large)):
        client = signed_in(affiliate)
        counts[name] = (
            _queries(client, "/affiliate/"),
            _queries(client, "/affiliate/?page=3"),
            _queries(client, "/api/affiliates/me/"),
            _queries(
                client,
                "/api/affiliates/me/commissions/?page=2" if name == "large" else "/api/affiliates/me/commissions/",
            ),
        )

    assert counts["small"] == counts["large"], counts
    assert max(counts["large"]) <= 11
    page = signed_in(large).get("/affiliate/").content.decode()
    assert "Commissions (500)" in page and page.count('href="/affiliate/commissions/') == 25
    print(f"\n[figures] queries (page, page 3, api me, api list) 5 commissions={counts['small']} 500={counts['large']}")


def test_superseded_events_are_hidden_from_the_dashboard_but_kept(alice):
    data = signed_in(alice).get("/api/affiliates/me/").json()
    assert len(data["tier_history"]) == 1
    assert TierEvent.objects.filter(affiliate=alice).count() == 2


def test_an_affiliate_signs_in_on_the_affiliate_login_page_and_out_again(alice):
    client = Client()
    form = client.get("/affiliate/login/?next=/affiliate/")
    assert form.status_code == 200 and b'name="username"' in form.content
    assert client.post("/affiliate/login/", {"username": "alice", "password": "wrong"}).status_code == 200
    response = client.post("/affiliate/login/", {"username": "alice", "password": "pw", "next": "/affiliate/"})
    assert response.status_code == 302 and response.url == "/affiliate/"
    assert client.get("/affiliate/").status_code == 200
    assert client.post("/affiliate/logout/").url == "/affiliate/login/"
    assert client.get("/affiliate/").url.startswith("/affiliate/login/")
