"""The memoised type hints change the squareup SDK's speed, not what it sends or reads."""

import pytest
import typing_extensions
from square.core import serialization
from square.core.serialization import convert_and_respect_annotation_metadata
from square.requests.address import AddressParams
from square.requests.order import OrderParams
from square.types.create_order_response import CreateOrderResponse

from pos_sync.clients import sdk_type_hints

ORDER = {
    "location_id": "L1",
    "reference_id": "bo-order-7",
    "ticket_name": "Table 4",
    "line_items": [{"name": "Pasta", "quantity": "2", "base_price_money": {"amount": 1250, "currency": "USD"}}],
}
RESPONSE = {
    "order": {
        "id": "O1",
        "location_id": "L1",
        "reference_id": "bo-order-7",
        "state": "OPEN",
        "total_money": {"amount": 2500, "currency": "USD"},
        "line_items": [{"uid": "u1", "name": "Pasta", "quantity": "2"}],
    }
}


def both_ways(monkeypatch, convert):
    memoised = convert()
    monkeypatch.setattr(serialization, "typing_extensions", typing_extensions)  # the SDK as shipped
    return memoised, convert()


def test_the_client_module_installs_it_for_the_sdk_serializer_only():
    import pos_sync.clients.square  # noqa: F401  (installs on import)

    assert serialization.typing_extensions.get_type_hints is sdk_type_hints.get_type_hints
    assert typing_extensions.get_type_hints is not sdk_type_hints.get_type_hints  # the rest of the process


def test_hints_are_computed_once_and_cannot_be_changed_by_a_caller():
    first = sdk_type_hints.get_type_hints(OrderParams, include_extras=True)
    assert sdk_type_hints.get_type_hints(OrderParams, include_extras=True) is first
    assert dict(first) == typing_extensions.get_type_hints(OrderParams, include_extras=True)
    with pytest.raises(TypeError):
        first["location_id"] = int  # type: ignore[index]


def test_a_request_body_is_converted_exactly_as_without_the_cache(monkeypatch):
    sdk_type_hints.install()
    memoised, shipped = both_ways(
        monkeypatch,
        lambda: convert_and_respect_annotation_metadata(object_=ORDER, annotation=OrderParams, direction="write"),
    )
    assert memoised == shipped == ORDER


def test_aliases_are_still_applied(monkeypatch):
    sdk_type_hints.install()
    address = {"address_line1": "1 Main St", "locality": "Springfield"}
    memoised, shipped = both_ways(
        monkeypatch,
        lambda: convert_and_respect_annotation_metadata(object_=address, annotation=AddressParams, direction="write"),
    )
    assert memoised == shipped == {"address_line_1": "1 Main St", "locality": "Springfield"}


def test_a_response_is_read_exactly_as_without_the_cache(monkeypatch):
    sdk_type_hints.install()
    memoised, shipped = both_ways(
        monkeypatch,
        lambda: convert_and_respect_annotation_metadata(
            object_=RESPONSE, annotation=CreateOrderResponse, direction="read"
        ),
    )
    assert memoised == shipped == RESPONSE


def test_installing_twice_keeps_one_layer():
    sdk_type_hints.install()
    installed = serialization.typing_extensions
    sdk_type_hints.install()
    assert serialization.typing_extensions is installed
