"""Square stand-in: CreateOrder, SearchOrders, CreatePayment (EXTERNAL) and RefundPayment, speaking
the JSON that the official `squareup` SDK sends and parses.

What it reproduces of the real API (the parts this project relies on):
- `Authorization: Bearer <token>` is required; an unknown token answers 401 AUTHENTICATION_ERROR.
  Every token belongs to an application: the default ones to ours (OUR_APPLICATION); a test adds a
  restaurant's other integration with `add_token(token, application=...)`.
- Order `metadata` (https://developer.squareup.com/docs/orders-api/metadata): at most 10 entries,
  keys of at most 60 characters in [a-zA-Z0-9_-], values of at most 255; "Entries written by
  applications are private and can only be read or modified by the same application", so an
  order carries each application's entries apart and every answer shows the caller's own only.
- `idempotency_key` is a body field: CreateOrder up to 192 characters (optional), CreatePayment and
  RefundPayment 1 to 45 (required). The same key with the same request replays the first result;
  the same key with a changed request answers 400 IDEMPOTENCY_KEY_REUSED. Keys are scoped per
  token and per endpoint. Square does not publish the retention window: `expire_idempotency()`
  forgets every key, as Square may after 24 hours.
- Paying an order (https://developer.squareup.com/docs/orders-api/pay-for-orders): CreatePayment
  with the `order_id`, `amount_money` equal to the order's amount due, the order's location; the
  payment shows up on the order as a tender (`tenders[].payment_id`) and, the order being fully
  paid, moves it to COMPLETED ("Completed orders are fully paid. This is a terminal state.",
  https://developer.squareup.com/reference/square/enums/OrderState): it takes no second payment.
- SearchOrders (https://developer.squareup.com/docs/orders-api/manage-orders/search-orders and
  https://developer.squareup.com/reference/square/orders-api/search-orders): one to ten
  `location_ids`, only those locations' orders, every application's; `limit` default 500, max
  1000; an opaque `cursor` bound to the original query. Filters are ANDed: `state_filter.states`,
  and one `date_time_filter` range (start and end inclusive; an absent end is the time of the
  cursor's first request) which requires `sort.sort_field` on that same field.
- Errors are `{"errors": [{"category", "code", "detail", "field"}]}`.

Tests seed history directly (`add_order`, `add_external_payment`), e.g. the duplicates an old cron
left behind, and read the objects back from `orders`, `payments` and `refunds`.
"""

import base64
import hashlib
import json
import os
import re
import secrets
import string
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sandbox.core import IdempotencyConflict, IdempotencyInFlight, Json, Request, StandIn

# The demo's token, plus whatever SQUARE_ACCESS_TOKEN the project runs with.
DEFAULT_TOKENS = tuple({"square-sandbox-token", os.environ.get("SQUARE_ACCESS_TOKEN") or "square-sandbox-token"})
OUR_APPLICATION = "back-office"  # the application the default tokens were issued to
ORDER_KEY_MAX = 192
PAYMENT_KEY_MAX = 45
REFUND_KEY_MAX = 45
REFERENCE_ID_MAX = 40
SEARCH_LIMIT_DEFAULT = 500
SEARCH_LIMIT_MAX = 1000
SEARCH_MAX_LOCATIONS = 10
METADATA_MAX_ENTRIES = 10
METADATA_KEY = re.compile(r"[a-zA-Z0-9_-]{1,60}")
METADATA_VALUE_MAX = 255
EXTERNAL_TYPES = {"CHECK", "BANK_TRANSFER", "OTHER_GIFT_CARD", "CRYPTO", "SQUARE_CASH", "SOCIAL", "EXTERNAL"}
EXTERNAL_TYPES |= {"EMONEY", "CARD", "STORED_BALANCE", "FOOD_VOUCHER", "OTHER"}
_ID_ALPHABET = string.ascii_letters + string.digits


class SquareRefusal(Exception):
    """A request Square answers with an error; raised inside handlers, never stored for replay."""

    def __init__(self, status: int, code: str, detail: str, *, field: str = "", category: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.category = category or ("INVALID_REQUEST_ERROR" if status < 500 else "API_ERROR")


def square_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(29))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def money(amount: int, currency: str) -> Json:
    return {"amount": amount, "currency": currency}


class SquareStandIn(StandIn):
    name = "square"
    ROUTES = [
        ("POST", r"/v2/orders", "create_order"),
        ("POST", r"/v2/orders/search", "search_orders"),
        ("POST", r"/v2/payments", "create_payment"),
        ("POST", r"/v2/refunds", "refund_payment"),
    ]

    def __init__(self, tokens: Iterable[str] = DEFAULT_TOKENS, application: str = OUR_APPLICATION) -> None:
        self.applications = dict.fromkeys(tokens, application)  # token -> the application it belongs to
        super().__init__()

    def add_token(self, token: str, *, application: str) -> None:
        """Accept `token` as one of `application`'s (e.g. a restaurant's other integration)."""
        with self.lock:
            self.applications[token] = application

    # --- state --------------------------------------------------------------------------------
    def reset_state(self) -> None:
        self.orders: dict[str, Json] = {}
        self.payments: dict[str, Json] = {}
        self.refunds: dict[str, Json] = {}
        self.metadata: dict[str, dict[str, dict[str, str]]] = {}  # order id -> application -> entries

    def state(self) -> Json:
        with self.lock:
            return {
                "orders": list(self.orders.values()),
                "payments": list(self.payments.values()),
                "refunds": list(self.refunds.values()),
                "order_metadata": json.loads(json.dumps(self.metadata)),
            }

    def order_as_seen_by(self, order_id: str, application: str = OUR_APPLICATION) -> Json:
        """The order as `application` reads it: with its own metadata entries, no one else's."""
        with self.lock:
            order = json.loads(json.dumps(self.orders[order_id]))
            entries = self.metadata.get(order_id, {}).get(application)
            if entries:
                order["metadata"] = dict(entries)
            return order

    def expire_idempotency(self) -> None:
        """Forget every idempotency key, as Square may once its (unpublished) window has passed."""
        self.idempotency.clear()

    def orders_with_reference(self, reference_id: str) -> list[Json]:
        with self.lock:
            return [o for o in self.orders.values() if o.get("reference_id") == reference_id]

    def payments_for_order(self, order_id: str) -> list[Json]:
        with self.lock:
            return [p for p in self.payments.values() if p.get("order_id") == order_id]

    # --- auth and errors ------------------------------------------------------------------------
    def authorized(self, request: Request) -> bool:
        return self._token(request) in self.applications

    def _application(self, request: Request) -> str:
        return self.applications.get(self._token(request), "")

    def error_body(self, status: int, code: str, message: str) -> Json:
        category = (
            "AUTHENTICATION_ERROR" if status == 401 else ("API_ERROR" if status >= 500 else "INVALID_REQUEST_ERROR")
        )
        return {"errors": [{"category": category, "code": code, "detail": message}]}

    def _token(self, request: Request) -> str:
        header = next((v for k, v in request.headers.items() if k.lower() == "authorization"), "")
        scheme, _, token = header.partition(" ")
        return token if scheme == "Bearer" else ""

    def _answer(
        self,
        request: Request,
        work: Callable[[Json], Json],
        *,
        key_scope: str = "",
        key_max: int = 0,
        key_required: bool = False,
    ) -> tuple[int, Json]:
        """Validate and run `work`; with a key, replay the first success for the same request.
        Refusals are never stored: the same key may be retried once the request is fixed."""
        body = _json_or_empty(request)
        if not isinstance(body, dict):
            return 400, self.error_body(400, "INVALID_REQUEST_ERROR", "The request body must be a JSON object.")
        try:
            if key_scope:
                _check_key(body.get("idempotency_key"), key_max, required=key_required)
            key = body.get("idempotency_key")
            if not key_scope or key is None:
                return 200, work(body)
            scoped = f"{hashlib.sha256(self._token(request).encode()).hexdigest()[:12]}:{key_scope}:{key}"
            fingerprint = json.dumps(body, sort_keys=True)
            return self.idempotency.run(scoped, fingerprint, lambda: (200, work(body)))
        except SquareRefusal as refusal:
            error = {"category": refusal.category, "code": refusal.code, "detail": refusal.detail}
            if refusal.field:
                error["field"] = refusal.field
            return refusal.status, {"errors": [error]}
        except IdempotencyConflict:
            return 400, self.error_body(
                400, "IDEMPOTENCY_KEY_REUSED", "The idempotency key was already used with a different request."
            )
        except IdempotencyInFlight:
            return 409, self.error_body(409, "CONFLICT", "A request with this idempotency key is still in progress.")

    # --- CreateOrder ----------------------------------------------------------------------------
    def create_order(self, request: Request) -> tuple[int, Json]:
        application = self._application(request)
        return self._answer(
            request, lambda body: self._create_order(body, application), key_scope="orders", key_max=ORDER_KEY_MAX
        )

    def _create_order(self, body: Json, application: str) -> Json:
        spec = body.get("order")
        if not isinstance(spec, dict):
            raise SquareRefusal(400, "MISSING_REQUIRED_PARAMETER", "Field must be set", field="order")
        location_id = _required_str(spec, "location_id", "order.location_id")
        reference_id = spec.get("reference_id")
        if reference_id is not None and len(str(reference_id)) > REFERENCE_ID_MAX:
            raise SquareRefusal(400, "VALUE_TOO_LONG", "Must be at most 40 characters", field="order.reference_id")
        return {
            "order": self.add_order(
                location_id=location_id,
                reference_id=reference_id,
                line_items=spec.get("line_items") or [],
                ticket_name=spec.get("ticket_name"),
                source=spec.get("source"),
                metadata=spec.get("metadata"),
                application=application,
            )
        }

    def add_order(
        self,
        *,
        location_id: str,
        reference_id: str | None,
        line_items: list[Json],
        created_at: str | None = None,
        ticket_name: str | None = None,
        source: Json | None = None,
        metadata: Json | None = None,
        application: str = OUR_APPLICATION,
    ) -> Json:
        """Record an order as Square would (also used by tests to seed history directly), written
        by `application`; returns it as that application reads it.

        line_items as CreateOrder takes them: {"name", "quantity": "2", "base_price_money": {...}}.
        """
        entries = _metadata(metadata)
        line_items = [_line_item(item, i) for i, item in enumerate(line_items)]
        currencies = {line["base_price_money"]["currency"] for line in line_items} or {"USD"}
        if len(currencies) > 1:
            raise SquareRefusal(400, "INVALID_VALUE", "All line items must use one currency.", field="order.line_items")
        currency = currencies.pop()
        total = sum(line["total_money"]["amount"] for line in line_items)
        stamp = created_at or now_iso()
        order = {
            "id": square_id(),
            "location_id": location_id,
            "line_items": line_items,
            "created_at": stamp,
            "updated_at": stamp,
            "state": "OPEN",
            "version": 1,
            "total_money": money(total, currency),
            "total_tax_money": money(0, currency),
            "total_discount_money": money(0, currency),
            "total_tip_money": money(0, currency),
            "total_service_charge_money": money(0, currency),
            "net_amount_due_money": money(total, currency),
        }
        optional = {"reference_id": reference_id, "ticket_name": ticket_name, "source": source}
        order.update({k: v for k, v in optional.items() if v is not None})
        with self.lock:
            self.orders[order["id"]] = order
            if entries:
                self.metadata[order["id"]] = {application: entries}
            return self.order_as_seen_by(order["id"], application)

    # --- SearchOrders ---------------------------------------------------------------------------
    def search_orders(self, request: Request) -> tuple[int, Json]:
        application = self._application(request)
        return self._answer(request, lambda body: self._search_orders(body, application))

    def _search_orders(self, body: Json, application: str) -> Json:
        location_ids = body.get("location_ids")
        if not isinstance(location_ids, list) or not location_ids:
            raise SquareRefusal(400, "MISSING_REQUIRED_PARAMETER", "Field must be set", field="location_ids")
        if len(location_ids) > SEARCH_MAX_LOCATIONS:
            raise SquareRefusal(400, "VALUE_TOO_HIGH", "At most 10 location ids", field="location_ids")
        limit = body.get("limit") or SEARCH_LIMIT_DEFAULT
        if not isinstance(limit, int) or not 1 <= limit <= SEARCH_LIMIT_MAX:
            raise SquareRefusal(400, "INVALID_VALUE", "limit must be between 1 and 1000", field="limit")
        query = body.get("query") or {}
        fingerprint = hashlib.sha256(json.dumps([location_ids, query], sort_keys=True).encode()).hexdigest()[:16]
        offset, first_request_at = _read_cursor(body.get("cursor"), fingerprint)
        matched = self._matching_orders(location_ids, query, application, first_request_at)
        page = matched[offset : offset + limit]
        answer: Json = {}
        if page:
            if body.get("return_entries"):
                answer["order_entries"] = [
                    {"order_id": o["id"], "version": o["version"], "location_id": o["location_id"]} for o in page
                ]
            else:
                answer["orders"] = page
        if offset + limit < len(matched):
            answer["cursor"] = _write_cursor(offset + limit, fingerprint, first_request_at)
        return answer

    def _matching_orders(
        self, location_ids: list[str], query: Json, application: str, first_request_at: str
    ) -> list[Json]:
        # https://developer.squareup.com/docs/orders-api/manage-orders/search-orders: only the given
        # locations' orders (whoever created them), filters ANDed, one date_time_filter range whose
        # field must be the sort_field, each application seeing its own metadata only.
        filters = query.get("filter") or {}
        sort = query.get("sort") or {}
        sort_field = sort.get("sort_field", "CREATED_AT")
        if sort_field not in ("CREATED_AT", "UPDATED_AT", "CLOSED_AT"):
            raise SquareRefusal(400, "INVALID_ENUM_VALUE", "Unknown sort_field", field="query.sort.sort_field")
        window = (filters.get("date_time_filter") or {}).items()
        if len(window) > 1:
            raise SquareRefusal(
                400, "BAD_REQUEST", "Only one time range can be filtered at a time.", field="query.filter"
            )
        for field_name, _range in window:
            if field_name.upper() != sort_field:
                raise SquareRefusal(
                    400,
                    "INVALID_VALUE",
                    f"A date_time_filter on {field_name} requires sort_field {field_name.upper()}.",
                    field="query.sort.sort_field",
                )
        states = set((filters.get("state_filter") or {}).get("states") or [])
        with self.lock:
            found = [
                self.order_as_seen_by(o["id"], application)
                for o in self.orders.values()
                if o["location_id"] in location_ids
                and (not states or o["state"] in states)
                and all(_in_range(o.get(name.lower()), bounds or {}, first_request_at) for name, bounds in window)
            ]
        key = sort_field.lower()
        found.sort(key=lambda o: (o.get(key) or "", o["id"]), reverse=sort.get("sort_order", "DESC") == "DESC")
        return found

    # --- CreatePayment --------------------------------------------------------------------------
    def create_payment(self, request: Request) -> tuple[int, Json]:
        return self._answer(
            request, self._create_payment, key_scope="payments", key_max=PAYMENT_KEY_MAX, key_required=True
        )

    def _create_payment(self, body: Json) -> Json:
        source_id = _required_str(body, "source_id", "source_id")
        amount, currency = _money(body.get("amount_money"), "amount_money")
        if source_id != "EXTERNAL":
            raise SquareRefusal(400, "BAD_REQUEST", "This stand-in only takes EXTERNAL payments.", field="source_id")
        details = body.get("external_details")
        if not isinstance(details, dict):
            raise SquareRefusal(400, "MISSING_REQUIRED_PARAMETER", "Field must be set", field="external_details")
        if details.get("type") not in EXTERNAL_TYPES:
            raise SquareRefusal(400, "INVALID_ENUM_VALUE", "Unknown external type", field="external_details.type")
        _required_str(details, "source", "external_details.source")
        return {
            "payment": self.add_external_payment(
                order_id=body.get("order_id"),
                location_id=body.get("location_id"),
                amount=amount,
                currency=currency,
                external_details=details,
                reference_id=body.get("reference_id"),
            )
        }

    def add_external_payment(
        self,
        *,
        order_id: str | None,
        amount: int,
        currency: str,
        location_id: str | None = None,
        external_details: Json | None = None,
        reference_id: str | None = None,
    ) -> Json:
        """Take an EXTERNAL payment, paying `order_id` in full (tests use it to seed history)."""
        with self.lock:
            order = self._payable_order(order_id, location_id, amount, currency)
            stamp = now_iso()
            payment = {
                "id": square_id(),
                "created_at": stamp,
                "updated_at": stamp,
                "amount_money": money(amount, currency),
                "total_money": money(amount, currency),
                "approved_money": money(amount, currency),
                "status": "COMPLETED",
                "source_type": "EXTERNAL",
                "external_details": external_details or {"type": "OTHER", "source": "seed"},
                "location_id": order["location_id"] if order else (location_id or "MAIN"),
                "version_token": secrets.token_hex(8),
                "receipt_number": "",
            }
            if order:
                payment["order_id"] = order["id"]
                self._attach_tender(order, payment)
            if reference_id is not None:
                payment["reference_id"] = reference_id
            payment["receipt_number"] = payment["id"][:4]
            self.payments[payment["id"]] = payment
            return json.loads(json.dumps(payment))

    def _payable_order(self, order_id: str | None, location_id: str | None, amount: int, currency: str) -> Json | None:
        # "The CreatePayment request must include an order ID. The payment amount must match the
        # order total" (https://developer.squareup.com/docs/orders-api/pay-for-orders).
        if order_id is None:
            return None
        order = self.orders.get(order_id)
        if order is None:
            raise SquareRefusal(404, "NOT_FOUND", f"Order {order_id} not found.", field="order_id")
        if location_id and location_id != order["location_id"]:
            raise SquareRefusal(400, "INVALID_VALUE", "location_id does not match the order.", field="location_id")
        if order["state"] != "OPEN":
            raise SquareRefusal(400, "BAD_REQUEST", f"Order {order_id} is {order['state']}.", field="order_id")
        due = order["net_amount_due_money"]
        if (amount, currency) != (due["amount"], due["currency"]):
            raise SquareRefusal(
                400, "INVALID_VALUE", "amount_money must equal the order's amount due.", field="amount_money"
            )
        return order

    def _attach_tender(self, order: Json, payment: Json) -> None:
        # The payment becomes the order's tender (tenders[].payment_id) and the fully paid order is
        # COMPLETED, a terminal state (https://developer.squareup.com/reference/square/enums/OrderState).
        tender = {
            "id": payment["id"],
            "location_id": order["location_id"],
            "transaction_id": order["id"],
            "created_at": payment["created_at"],
            "amount_money": payment["amount_money"],
            "type": "OTHER",
            "payment_id": payment["id"],
        }
        order.setdefault("tenders", []).append(tender)
        order["net_amount_due_money"] = money(0, payment["amount_money"]["currency"])
        order["state"] = "COMPLETED"
        order["closed_at"] = order["updated_at"] = payment["created_at"]
        order["version"] += 1

    # --- RefundPayment --------------------------------------------------------------------------
    def refund_payment(self, request: Request) -> tuple[int, Json]:
        return self._answer(
            request, self._refund_payment, key_scope="refunds", key_max=REFUND_KEY_MAX, key_required=True
        )

    def _refund_payment(self, body: Json) -> Json:
        payment_id = _required_str(body, "payment_id", "payment_id")
        amount, currency = _money(body.get("amount_money"), "amount_money")
        with self.lock:
            payment = self.payments.get(payment_id)
            if payment is None:
                raise SquareRefusal(404, "NOT_FOUND", f"Payment {payment_id} not found.", field="payment_id")
            if payment["status"] != "COMPLETED":
                raise SquareRefusal(400, "BAD_REQUEST", "Only completed payments can be refunded.")
            paid = payment["amount_money"]
            refunded = (payment.get("refunded_money") or {}).get("amount", 0)
            if currency != paid["currency"] or amount > paid["amount"] - refunded:
                raise SquareRefusal(
                    400, "REFUND_AMOUNT_INVALID", "The refund exceeds what is left.", field="amount_money"
                )
            return {"refund": self._record_refund(payment, amount, currency, body.get("reason") or "")}

    def _record_refund(self, payment: Json, amount: int, currency: str, reason: str) -> Json:
        stamp = now_iso()
        refund = {
            "id": square_id(),
            "status": "COMPLETED",
            "location_id": payment["location_id"],
            "amount_money": money(amount, currency),
            "payment_id": payment["id"],
            "order_id": payment.get("order_id"),
            "reason": reason,
            "created_at": stamp,
            "updated_at": stamp,
            "destination_type": "EXTERNAL",
        }
        self.refunds[refund["id"]] = refund
        payment.setdefault("refund_ids", []).append(refund["id"])
        before = (payment.get("refunded_money") or {}).get("amount", 0)
        payment["refunded_money"] = money(before + amount, currency)
        payment["updated_at"] = stamp
        order = self.orders.get(payment.get("order_id") or "")
        if order is not None:
            order.setdefault("refunds", []).append(
                {
                    "id": refund["id"],
                    "location_id": order["location_id"],
                    "transaction_id": order["id"],
                    "tender_id": payment["id"],
                    "created_at": stamp,
                    "reason": reason,
                    "amount_money": money(amount, currency),
                    "status": "COMPLETED",
                }
            )
            order["updated_at"] = stamp
            order["version"] += 1
        return json.loads(json.dumps(refund))


# --- validation helpers ---------------------------------------------------------------------------
def _json_or_empty(request: Request) -> Any:
    try:
        return request.json
    except ValueError:
        return None


def _check_key(key: Any, maximum: int, *, required: bool) -> None:
    if key is None:
        if required:
            raise SquareRefusal(400, "MISSING_REQUIRED_PARAMETER", "Field must be set", field="idempotency_key")
        return
    if not isinstance(key, str) or len(key) < 1:
        raise SquareRefusal(400, "VALUE_TOO_SHORT", "Must be at least 1 character", field="idempotency_key")
    if len(key) > maximum:
        raise SquareRefusal(400, "VALUE_TOO_LONG", f"Must be at most {maximum} characters", field="idempotency_key")


def _required_str(container: Json, name: str, field: str) -> str:
    value = container.get(name)
    if not isinstance(value, str) or not value:
        raise SquareRefusal(400, "MISSING_REQUIRED_PARAMETER", "Field must be set", field=field)
    return value


def _money(value: Any, field: str) -> tuple[int, str]:
    if not isinstance(value, dict):
        raise SquareRefusal(400, "MISSING_REQUIRED_PARAMETER", "Field must be set", field=field)
    amount, currency = value.get("amount"), value.get("currency")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise SquareRefusal(400, "INVALID_VALUE", "amount must be a positive integer", field=f"{field}.amount")
    if not isinstance(currency, str) or len(currency) != 3:
        raise SquareRefusal(400, "INVALID_VALUE", "currency must be an ISO 4217 code", field=f"{field}.currency")
    return amount, currency


def _line_item(item: Any, index: int) -> Json:
    field = f"order.line_items[{index}]"
    if not isinstance(item, dict):
        raise SquareRefusal(400, "INVALID_VALUE", "A line item must be an object", field=field)
    quantity = item.get("quantity")
    if not isinstance(quantity, str) or not quantity.isdigit() or int(quantity) < 1:
        raise SquareRefusal(
            400, "INVALID_VALUE", "quantity must be a positive integer string", field=f"{field}.quantity"
        )
    if not item.get("name") and not item.get("catalog_object_id"):
        raise SquareRefusal(400, "MISSING_REQUIRED_PARAMETER", "name or catalog_object_id", field=f"{field}.name")
    price = item.get("base_price_money")
    if not isinstance(price, dict) or not isinstance(price.get("amount"), int) or price["amount"] < 0:
        raise SquareRefusal(400, "INVALID_VALUE", "base_price_money is required", field=f"{field}.base_price_money")
    currency = price.get("currency") or "USD"
    total = price["amount"] * int(quantity)
    line = {
        "uid": item.get("uid") or square_id()[:22],
        "name": item.get("name"),
        "quantity": quantity,
        "item_type": "ITEM",
        "base_price_money": money(price["amount"], currency),
        "variation_total_price_money": money(total, currency),
        "gross_sales_money": money(total, currency),
        "total_tax_money": money(0, currency),
        "total_discount_money": money(0, currency),
        "total_money": money(total, currency),
    }
    if item.get("note"):
        line["note"] = item["note"]
    return line


def _metadata(metadata: Any) -> dict[str, str]:
    """Square's limits on an application's metadata entries (see the module docstring)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or len(metadata) > METADATA_MAX_ENTRIES:
        raise SquareRefusal(400, "INVALID_VALUE", "At most 10 metadata entries", field="order.metadata")
    for key, value in metadata.items():
        if not METADATA_KEY.fullmatch(key):
            raise SquareRefusal(400, "INVALID_VALUE", "Keys: 1 to 60 of [a-zA-Z0-9_-]", field=f"order.metadata.{key}")
        if not isinstance(value, str) or len(value) > METADATA_VALUE_MAX:
            raise SquareRefusal(400, "INVALID_VALUE", "Values: strings of at most 255", field=f"order.metadata.{key}")
    return dict(metadata)


def _in_range(stamp: str | None, bounds: Json, first_request_at: str) -> bool:
    """Start and end both inclusive; no end means the time of the cursor's first request, so a
    paged search does not grow with the orders created while it pages."""
    if stamp is None:
        return False
    moment = _parse(stamp)
    start, end = bounds.get("start_at"), bounds.get("end_at") or first_request_at
    return (start is None or moment >= _parse(start)) and moment <= _parse(end)


def _parse(stamp: str) -> datetime:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SquareRefusal(400, "INVALID_TIME", f"Not an RFC 3339 timestamp: {stamp}") from exc


def _write_cursor(offset: int, fingerprint: str, first_request_at: str) -> str:
    data = {"o": offset, "f": fingerprint, "t": first_request_at}
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def _read_cursor(cursor: Any, fingerprint: str) -> tuple[int, str]:
    """(offset, the time of the first request of this search)."""
    if cursor is None:
        return 0, now_iso()
    try:
        data = json.loads(base64.urlsafe_b64decode(str(cursor).encode()))
        offset, seen, first_request_at = int(data["o"]), data["f"], str(data["t"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SquareRefusal(400, "INVALID_CURSOR", "The cursor is not valid.", field="cursor") from exc
    if seen != fingerprint:
        raise SquareRefusal(400, "INVALID_CURSOR", "A cursor must be used with its original query.", field="cursor")
    return offset, first_request_at
