"""The state diagram drawn from the django-fsm declarations: valid SVG with every declared state and
move, the current state marked, the moves allowed from it emphasised, and text escaped."""

import re
import xml.etree.ElementTree as ET

import pytest
from django.contrib import admin
from django.db import models
from django.test.utils import isolate_apps
from django.urls import reverse
from django_fsm import FSMField, FSMModelMixin, transition

from audit.admin_mixins import StateDiagramAdminMixin
from audit.checks import fsm_state_fields
from audit.state_diagram import state_diagram_svg, state_machine
from payouts.models import Payout, PayoutStatus
from pos_sync.models import SyncJob
from tests.factories.affiliates import CommissionFactory, TierEventFactory
from tests.factories.loyalty import LoyaltyDiscountFactory
from tests.factories.payouts import PayoutFactory
from tests.factories.pos_sync import OrderFactory, SyncJobFactory

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def states_in(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-state"): g for g in root.iter(f"{SVG}g") if g.get("data-state") is not None}


def moves_in(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if "transition" in (g.get("class") or "").split()]


def declared(model: type[models.Model]) -> set[tuple[str, str, str]]:
    field = next(f for m, fields in fsm_state_fields() if m is model for f in fields)
    return {(str(t.source), str(t.target), t.name) for t in field.get_all_transitions(model)}


@pytest.mark.parametrize("model", [model for model, _ in fsm_state_fields()], ids=lambda m: m._meta.label)
def test_every_declared_state_and_move_is_drawn(model):
    field = next(f for m, fields in fsm_state_fields() if m is model for f in fields)
    choices = {str(value) for value, _label in field.flatchoices}

    root = parse(state_diagram_svg(model))

    assert root.tag == f"{SVG}svg"
    assert choices <= set(states_in(root))
    drawn = {
        (g.get("data-source"), g.get("data-target"), name)
        for g in moves_in(root)
        for name in g.get("data-names").split()
    }
    for source, target, name in declared(model):
        sources = choices - ({target} if source == "+" else set()) if source in ("*", "+") else {source}
        assert {(s, target, name) for s in sources} <= drawn, (source, target, name)
    assert {name for _s, _t, name in drawn} == {name for _s, _t, name in declared(model)}


def test_the_current_state_is_marked_and_its_declared_moves_emphasised():
    root = parse(state_diagram_svg(Payout, current=PayoutStatus.APPROVED))

    states = states_in(root)
    assert [s for s, g in states.items() if "current" in g.get("class").split()] == ["approved"]
    assert states["approved"].get("aria-current") == "true"
    emphasised = {
        (g.get("data-target"), g.get("data-names")) for g in moves_in(root) if "next" in g.get("class").split()
    }
    assert emphasised == {("processing", "start_processing"), ("cancelled", "cancel")}
    assert {s for s, g in states.items() if "next" in g.get("class").split()} == {"processing", "cancelled"}
    description = root.find(f"{SVG}desc").text
    assert "Now: Approved." in description and "Start processing (to Processing)" in description


def test_next_moves_narrow_the_emphasis_and_the_rest_is_said_to_wait():
    root = parse(state_diagram_svg(Payout, current=PayoutStatus.FAILED, next_moves=["mark_paid_after_failure"]))

    emphasised = {g.get("data-names") for g in moves_in(root) if "next" in g.get("class").split()}
    assert emphasised == {"mark_paid_after_failure"}
    description = root.find(f"{SVG}desc").text
    assert "Not possible now (a condition is not met): Retry (to Requested)." in description


def test_a_final_state_says_so():
    root = parse(state_diagram_svg(SyncJob, current="success"))

    assert not [g for g in moves_in(root) if "next" in g.get("class").split()]
    assert "This is a final state" in root.find(f"{SVG}desc").text


@isolate_apps("audit")  # a model of this test only, never seen by the system checks or other tests
def test_wildcard_sources_are_spelled_out_and_state_names_escaped():
    class Hostile(FSMModelMixin, models.Model):
        status = FSMField(
            default="<new>",
            choices=[("<new>", '<script>alert("x")</script>'), ("a&b", "A & B"), ("gone", "Gone")],
            protected=True,
        )

        class Meta:
            app_label = "audit"
            managed = False

        def __str__(self) -> str:
            return str(self.pk)

        @transition(field=status, source="<new>", target="a&b")
        def go(self) -> None:
            pass

        @transition(field=status, source="*", target="gone")
        def drop(self) -> None:
            pass

    svg = state_diagram_svg(Hostile, current="<new>")

    assert "<script>" not in svg
    root = parse(svg)  # escaped text keeps it well-formed XML
    assert set(states_in(root)) == {"<new>", "a&b", "gone"}
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert '<script>alert("x")</script>' in texts and "A & B" in texts
    assert {(g.get("data-source"), g.get("data-target")) for g in moves_in(root) if g.get("data-names") == "drop"} == {
        ("<new>", "gone"),
        ("a&b", "gone"),
        ("gone", "gone"),
    }
    assert state_machine(Hostile).initial == "<new>"


def test_every_admin_registered_state_model_has_the_diagram_mixin():
    """So a state model added to the admin later gets its diagram too (the page tests below render each)."""
    shown = [model for model, _ in fsm_state_fields() if admin.site.is_registered(model)]

    assert {m._meta.label for m in shown} >= set(PAGES)
    for model in shown:
        assert isinstance(admin.site.get_model_admin(model), StateDiagramAdminMixin), model._meta.label


PAGES = {
    "payouts.Payout": lambda: PayoutFactory(status=PayoutStatus.APPROVED),
    "affiliates.Commission": lambda: CommissionFactory(),
    "affiliates.TierEvent": lambda: TierEventFactory(),
    "pos_sync.Order": lambda: OrderFactory(status="closed"),
    "pos_sync.SyncJob": lambda: SyncJobFactory(order=OrderFactory(status="closed")),
    "loyalty.LoyaltyDiscount": lambda: LoyaltyDiscountFactory(),
}


@pytest.mark.django_db
@pytest.mark.parametrize("label", sorted(PAGES))
def test_each_money_model_change_page_shows_its_diagram_at_the_current_state(client, superuser, label):
    obj = PAGES[label]()
    client.force_login(superuser)
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])

    page = client.get(url)

    assert page.status_code == 200
    html = page.content.decode()
    found = re.findall(r'<svg xmlns="http://www.w3.org/2000/svg" class="state-diagram".*?</svg>', html, flags=re.S)
    assert len(found) == 1
    root = parse(found[0])
    current = [s for s, g in states_in(root).items() if "current" in g.get("class").split()]
    assert current == [obj.status]
    assert "<figcaption" in html and f"Now: {obj.get_status_display()}." in html
