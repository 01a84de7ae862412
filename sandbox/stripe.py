"""The Stripe stand-in: coupons, promotion codes and subscriptions, with Stripe's idempotency rules.

Speaks the subset of the API the loyalty and affiliates apps call, form-encoded as the official SDK
sends it:
    POST /v1/promotion_codes        promotion[type]=coupon&promotion[coupon]=... (or the older top-level
                                    `coupon`), customer, code, max_redemptions, metadata[...]
    GET  /v1/promotion_codes        ?code= ?coupon= ?customer= ?active= &limit= &starting_after= (newest first)
    GET  /v1/promotion_codes/{id}
    POST /v1/promotion_codes/{id}   active=false (deactivate), metadata[...]
    GET  /v1/coupons/{id}           404 resource_missing for an unknown coupon
    POST /v1/coupons                id, percent_off, duration (so the demo can fix its configuration)
    GET  /v1/invoice_payments       ?invoice= | ?payment[type]=payment_intent&payment[payment_intent]=pi_...
                                    (API 2025-03-31+: how a charge's payment intent leads to its invoice)
    GET  /v1/subscriptions/{id}     the subscription as it is now; 404 resource_missing if unknown

Behaves like Stripe where our safety depends on it:
- `Authorization: Bearer <secret key>` is required (401 otherwise).
- `Idempotency-Key` (at most 255 characters) on POST: the first response that came out of executing
  the request is kept for 24 hours and replayed for the same key, success or failure, 500s included;
  the same key with other parameters is a 400 `idempotency_error`; a key whose first request is
  still running gets 409 (type `idempotency_error`, code `idempotency_key_in_use`) and nothing is
  kept for it, so its retry gets the first request's result. As Stripe documents, a request refused
  by validation (missing parameter, unknown coupon, a code already active) never started executing,
  so nothing is kept for its key and a retry with the same key can succeed once the cause is fixed.
  (https://docs.stripe.com/api/idempotent_requests: "If incoming parameters fail validation, or the
  request conflicts with another request that's executing concurrently, we don't save the
  idempotent result ... You can retry these requests"; https://docs.stripe.com/error-codes lists
  `idempotency_key_in_use`.)
- A subscription is read with GET /v1/subscriptions/{id} as it is now, whatever events said before:
  the loyalty mirror reads it at every `customer.subscription.*` event, as Stripe recommends for
  events delivered out of order (https://docs.stripe.com/webhooks#event-ordering). A canceled one is
  still returned, with status `canceled`; an unknown id is 404 `resource_missing`.
- A promotion code's `code` is unique among active codes, case-insensitively.
- `keep_refusals = True` keeps validation refusals for their key as well, for tests that must hold
  under the stricter reading "every first response is replayed".
- `execution_delay` holds each create inside execution (a second request with its key gets 409).
- `fail_executions = n` makes the next n creates fail with a 500 *inside* execution: that 500 is kept
  and replayed for its key, as Stripe replays its own 500s (the shared `error_500` fault, in
  contrast, answers before the request reaches Stripe, so nothing is kept).

In process, tests read and seed `coupons` and `promotion_codes`, and call `seed_promotion_code(...)`,
`seed_invoice_payment(...)`, `set_subscription(...)` and `forget_subscription(...)`.
Control over HTTP (besides the shared /__sandbox__/ endpoints), for tests that run the stand-in in
its own process (tests/chaos):
    POST /__stripe__/subscriptions/{id}   {"customer": "cus_1", "status": "past_due", "plan": "pro",
                                           "metadata": {...}, "start_date": 1700000000}  create or change
    POST /__stripe__/subscriptions/{id}   {"forget": true}  Stripe no longer knows it (404)
"""

import copy
import os
import re
import time
from collections.abc import Callable
from typing import Any

from sandbox.core import IdempotencyStore, Json, Request, StandIn

IDEMPOTENCY_KEY_MAX = 255
IDEMPOTENCY_WINDOW_SECONDS = 24 * 3600
DEFAULT_COUPON_ID = "loyalty-anniversary-10"
CODE_PATTERN = re.compile(r"[A-Za-z0-9]{3,100}")
PROMOTION_CODE_PATH = r"/v1/promotion_codes/(?P<id>[A-Za-z0-9_]+)"
SUBSCRIPTION_STATUSES = {
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
}


class StripeError(Exception):
    """A validation refusal: answered before execution, so no idempotent result is kept."""

    def __init__(self, status: int, message: str, *, code: str = "", param: str = "", kind: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.kind = kind or ("api_error" if status >= 500 else "invalid_request_error")


class StripeIdempotencyStore(IdempotencyStore):
    """The shared store plus Stripe's retention window (keys may be dropped after 24 hours) and
    Stripe's rule that a request refused before execution keeps nothing for its key."""

    def __init__(self, window_seconds: float = IDEMPOTENCY_WINDOW_SECONDS) -> None:
        super().__init__()
        self.window_seconds = window_seconds
        self._stored_at: dict[str, float] = {}

    def run_stripe(self, key: str, fingerprint: str, compute: Callable[[], tuple[int, Json]]) -> tuple[int, Json]:
        with self._lock:
            self._expire(time.time())
            if key in self._results:
                seen, status, body = self._results[key]
                if seen != fingerprint:
                    raise StripeError(
                        400,
                        f"Keys for idempotent requests can only be used with the same parameters they were first "
                        f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                        kind="idempotency_error",
                    )
                return status, body
            if key in self._in_flight:
                # Stripe: a request that "conflicts with another request that's executing
                # concurrently" is not executed and nothing is saved for its key, "You can retry
                # these requests" (docs.stripe.com/api/idempotent_requests). Raised before
                # execution, so the store keeps nothing for this attempt.
                raise StripeError(
                    409,
                    "There is currently another in-progress request using this Idempotency-Key, please retry later.",
                    code="idempotency_key_in_use",
                    kind="idempotency_error",
                )
            self._in_flight.add(key)
        try:
            status, body = compute()  # a StripeError (validation) propagates: nothing is kept
            with self._lock:
                self._results[key] = (fingerprint, status, body)
                self._stored_at[key] = time.time()
            return status, body
        finally:
            with self._lock:
                self._in_flight.discard(key)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._results)

    def clear(self) -> None:
        super().clear()
        with self._lock:
            self._stored_at.clear()

    def _expire(self, now: float) -> None:
        for key, stored in list(self._stored_at.items()):
            if now - stored >= self.window_seconds:
                self._results.pop(key, None)
                del self._stored_at[key]


class StripeStandIn(StandIn):
    name = "stripe"
    ROUTES = [
        ("POST", r"/v1/promotion_codes", "create_promotion_code"),
        ("GET", r"/v1/promotion_codes", "list_promotion_codes"),
        ("GET", PROMOTION_CODE_PATH, "retrieve_promotion_code"),
        ("POST", PROMOTION_CODE_PATH, "update_promotion_code"),
        ("POST", r"/v1/coupons", "create_coupon"),
        ("GET", r"/v1/coupons/(?P<id>[^/]+)", "retrieve_coupon"),
        ("GET", r"/v1/invoice_payments", "list_invoice_payments"),
        ("GET", r"/v1/subscriptions/(?P<id>[A-Za-z0-9_]+)", "retrieve_subscription"),
        ("POST", r"/__stripe__/subscriptions/(?P<id>[A-Za-z0-9_]+)", "control_subscription"),
    ]

    def __init__(self, *, api_key: str | None = None) -> None:
        # None: any secret key is accepted (the demo); a value: only that key.
        self.api_key = api_key if api_key is not None else os.environ.get("STRIPE_STANDIN_API_KEY")
        super().__init__()
        self.idempotency = StripeIdempotencyStore()

    # --- state ----------------------------------------------------------------------------
    def reset_state(self) -> None:
        self.coupons: dict[str, dict] = {DEFAULT_COUPON_ID: _coupon(DEFAULT_COUPON_ID, 10)}
        self.promotion_codes: dict[str, dict] = {}  # insertion order = creation order
        self.invoice_payments: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.fail_executions = 0
        self.keep_refusals = False  # True: keep validation refusals for their key too (the strict reading)
        self.execution_delay = 0.0  # seconds a create spends executing (its key is in flight meanwhile)
        self._sequence = 0

    def state(self) -> Json:
        return {
            "coupons": list(self.coupons.values()),
            "promotion_codes": list(self.promotion_codes.values()),
            "subscriptions": list(self.subscriptions.values()),
        }

    def active_codes(self) -> list[dict]:
        return [p for p in self.promotion_codes.values() if p["active"]]

    def seed_promotion_code(
        self,
        *,
        code: str,
        customer: str,
        coupon: str = DEFAULT_COUPON_ID,
        created: int | None = None,
        metadata: dict[str, str] | None = None,
        active: bool = True,
    ) -> dict:
        """Put a code at 'Stripe' directly, as if an earlier system had created it."""
        with self.lock:
            return self._store_code(code, customer, coupon, 1, metadata or {}, created=created, active=active)

    def seed_invoice_payment(
        self, *, invoice: str, payment_intent: str, amount: int, currency: str = "usd", created: int | None = None
    ) -> dict:
        """An invoice paid by a payment intent, as Stripe's InvoicePayment object shows it."""
        with self.lock:
            self._sequence += 1
            payment = {
                "id": f"inpay_{self._sequence:08d}{os.urandom(4).hex()}",
                "object": "invoice_payment",
                "amount_paid": amount,
                "amount_requested": amount,
                "created": int(time.time()) if created is None else created,
                "currency": currency,
                "invoice": invoice,
                "is_default": True,
                "livemode": False,
                "payment": {"type": "payment_intent", "payment_intent": payment_intent},
                "status": "paid",
                "status_transitions": {"canceled_at": None, "paid_at": int(time.time())},
            }
            self.invoice_payments[payment["id"]] = payment
            return payment

    def set_subscription(
        self,
        subscription_id: str,
        *,
        customer: str | None = None,
        status: str | None = None,
        plan: str | None = None,
        metadata: dict[str, str] | None = None,
        start_date: int | None = None,
    ) -> dict:
        """Create the subscription, or change what is given, as Stripe would show it from now on.
        Canceled is terminal, as at Stripe: a canceled subscription keeps that status."""
        if status is not None and status not in SUBSCRIPTION_STATUSES:
            raise ValueError(f"Not a Stripe subscription status: {status!r}")
        with self.lock:
            current = self.subscriptions.get(subscription_id)
            if current is None:
                current = _subscription(subscription_id, customer or f"cus_{subscription_id}", start_date)
                self.subscriptions[subscription_id] = current
            if customer is not None:
                current["customer"] = customer
            if status is not None and current["status"] not in ("canceled", "incomplete_expired"):
                current["status"] = status
                if status == "canceled":
                    current["canceled_at"] = current["ended_at"] = int(time.time())
            if plan is not None:
                current["items"]["data"][0]["price"] = {"id": f"price_{plan}", "object": "price", "lookup_key": plan}
            if metadata is not None:
                current["metadata"] = dict(metadata)
            if start_date is not None:
                current["start_date"] = start_date
            return copy.deepcopy(current)

    def forget_subscription(self, subscription_id: str) -> None:
        """Stripe no longer knows the subscription: GET answers 404 resource_missing."""
        with self.lock:
            self.subscriptions.pop(subscription_id, None)

    # --- auth and errors ----------------------------------------------------------------------
    def authorized(self, request: Request) -> bool:
        if request.path.startswith("/__stripe__/"):
            return True  # the stand-in's own control routes, never Stripe's API
        auth = _header(request, "Authorization")
        if not auth.startswith("Bearer ") or not auth.removeprefix("Bearer ").startswith(("sk_", "rk_")):
            return False
        return self.api_key is None or auth.removeprefix("Bearer ") == self.api_key

    def error_body(self, status: int, code: str, message: str) -> Json:
        kind = "api_error" if status >= 500 else "invalid_request_error"
        return {"error": {"type": kind, "code": code.lower(), "message": message}}

    # --- promotion codes ------------------------------------------------------------------------
    def create_promotion_code(self, request: Request) -> tuple[int, Json]:
        return self._idempotent(request, lambda: self._create_promotion_code(request.form))

    def _create_promotion_code(self, form: dict[str, str]) -> tuple[int, Json]:
        coupon = _coupon_param(form)
        if coupon not in self.coupons:
            raise StripeError(400, f"No such coupon: '{coupon}'", code="resource_missing", param="promotion[coupon]")
        customer = form.get("customer", "")
        if customer and not customer.startswith("cus_"):
            raise StripeError(400, f"No such customer: '{customer}'", code="resource_missing", param="customer")
        max_redemptions = _positive_int(form, "max_redemptions")
        if self.execution_delay:
            time.sleep(self.execution_delay)
        code = form.get("code") or f"CODE{self._sequence + 1:06d}"
        if not CODE_PATTERN.fullmatch(code):
            raise StripeError(400, "Invalid code: use 3 to 100 letters and digits.", param="code")
        with self.lock:
            if any(p["code"].lower() == code.lower() for p in self.active_codes()):
                raise StripeError(
                    400, f"A promotion code with code '{code}' already exists.", code="duplicate_value", param="code"
                )
            if self.fail_executions > 0:
                self.fail_executions -= 1
                return 500, self.error_body(500, "api_error", "An unknown error occurred while executing.")
            metadata = _metadata(form)
            return 200, self._store_code(code, customer or None, coupon, max_redemptions, metadata)

    def list_promotion_codes(self, request: Request) -> tuple[int, Json]:
        query = {k: v[-1] for k, v in request.query.items()}
        try:
            limit = int(query.get("limit", "10"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return self._error(StripeError(400, "Invalid limit: must be between 1 and 100.", param="limit"))
        with self.lock:
            matching = [p for p in reversed(self.promotion_codes.values()) if _list_filter(p, query)]
        after = query.get("starting_after")
        if after:
            ids = [p["id"] for p in matching]
            if after not in self.promotion_codes:
                return self._error(StripeError(400, f"No such promotion code: '{after}'", code="resource_missing"))
            matching = matching[ids.index(after) + 1 :] if after in ids else []
        page = matching[:limit]
        return 200, {"object": "list", "url": "/v1/promotion_codes", "data": page, "has_more": len(matching) > limit}

    def retrieve_promotion_code(self, request: Request) -> tuple[int, Json]:
        found = self.promotion_codes.get(request.match["id"])
        if found is None:
            return self._error(_missing_code(request.match["id"]))
        return 200, found

    def update_promotion_code(self, request: Request) -> tuple[int, Json]:
        return self._idempotent(request, lambda: self._update_promotion_code(request.match["id"], request.form))

    def _update_promotion_code(self, promo_id: str, form: dict[str, str]) -> tuple[int, Json]:
        with self.lock:
            promo = self.promotion_codes.get(promo_id)
            if promo is None:
                raise _missing_code(promo_id)
            if "active" in form:
                active = _bool(form, "active")
                clash = [p for p in self.active_codes() if p["code"].lower() == promo["code"].lower()]
                if active and not promo["active"] and clash:
                    raise StripeError(400, f"Code '{promo['code']}' is already active.", code="duplicate_value")
                promo["active"] = active
            promo["metadata"].update(_metadata(form))
            return 200, promo

    # --- invoice payments -------------------------------------------------------------------------
    def list_invoice_payments(self, request: Request) -> tuple[int, Json]:
        query = {k: v[-1] for k, v in request.query.items()}
        kind, intent = query.get("payment[type]"), query.get("payment[payment_intent]")
        if intent is not None and kind != "payment_intent":
            return self._error(StripeError(400, "payment[type] must be 'payment_intent'.", param="payment[type]"))
        try:
            limit = int(query.get("limit", "10"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return self._error(StripeError(400, "Invalid limit: must be between 1 and 100.", param="limit"))
        with self.lock:
            matching = [
                p
                for p in reversed(self.invoice_payments.values())
                if ("invoice" not in query or p["invoice"] == query["invoice"])
                and (intent is None or p["payment"].get("payment_intent") == intent)
            ]
        page = matching[:limit]
        return 200, {"object": "list", "url": "/v1/invoice_payments", "data": page, "has_more": len(matching) > limit}

    # --- subscriptions ---------------------------------------------------------------------------
    def retrieve_subscription(self, request: Request) -> tuple[int, Json]:
        with self.lock:
            found = self.subscriptions.get(request.match["id"])
            if found is None:
                return self._error(
                    StripeError(
                        404, f"No such subscription: '{request.match['id']}'", code="resource_missing", param="id"
                    )
                )
            return 200, copy.deepcopy(found)  # serialised after the lock is released

    def control_subscription(self, request: Request) -> tuple[int, Json]:
        body = request.json
        if body.get("forget"):
            self.forget_subscription(request.match["id"])
            return 200, {"deleted": True}
        try:
            return 200, self.set_subscription(
                request.match["id"],
                customer=body.get("customer"),
                status=body.get("status"),
                plan=body.get("plan"),
                metadata=body.get("metadata"),
                start_date=body.get("start_date"),
            )
        except ValueError as exc:
            return self._error(StripeError(400, str(exc), param="status"))

    # --- coupons ----------------------------------------------------------------------------
    def retrieve_coupon(self, request: Request) -> tuple[int, Json]:
        coupon = self.coupons.get(request.match["id"])
        if coupon is None:
            return self._error(StripeError(404, f"No such coupon: '{request.match['id']}'", code="resource_missing"))
        return 200, coupon

    def create_coupon(self, request: Request) -> tuple[int, Json]:
        return self._idempotent(request, lambda: self._create_coupon(request.form))

    def _create_coupon(self, form: dict[str, str]) -> tuple[int, Json]:
        coupon_id = form.get("id") or f"coupon{len(self.coupons) + 1}"
        if coupon_id in self.coupons:
            raise StripeError(400, f"Coupon already exists: '{coupon_id}'", code="resource_already_exists")
        try:
            percent = float(form["percent_off"])
        except (KeyError, ValueError):
            raise StripeError(400, "Missing required param: percent_off.", code="parameter_missing") from None
        self.coupons[coupon_id] = _coupon(coupon_id, percent, form.get("duration", "once"))
        return 200, self.coupons[coupon_id]

    # --- plumbing -----------------------------------------------------------------------------
    def _idempotent(self, request: Request, compute: Callable[[], tuple[int, Json]]) -> tuple[int, Json]:
        key = _header(request, "Idempotency-Key")
        try:
            if not key:
                return compute()
            if len(key) > IDEMPOTENCY_KEY_MAX:
                raise StripeError(
                    400, f"Idempotency-Key may be at most {IDEMPOTENCY_KEY_MAX} characters, got {len(key)}."
                )
            fingerprint = f"{request.method} {request.path} {sorted(request.form.items())}"
            return self.idempotency.run_stripe(key, fingerprint, lambda: self._refusal_kept_or_raised(compute))
        except StripeError as exc:
            return self._error(exc)

    def _refusal_kept_or_raised(self, compute: Callable[[], tuple[int, Json]]) -> tuple[int, Json]:
        try:
            return compute()
        except StripeError as exc:
            if self.keep_refusals:
                return self._error(exc)  # returned, so the store keeps and replays it
            raise

    def _error(self, exc: StripeError) -> tuple[int, Json]:
        body: dict[str, Any] = {"type": exc.kind, "message": exc.message}
        if exc.code:
            body["code"] = exc.code
        if exc.param:
            body["param"] = exc.param
        return exc.status, {"error": body}

    def _store_code(
        self,
        code: str,
        customer: str | None,
        coupon: str,
        max_redemptions: int | None,
        metadata: dict[str, str],
        *,
        created: int | None = None,
        active: bool = True,
    ) -> dict:
        self._sequence += 1
        promo = {
            "id": f"promo_{self._sequence:08d}{os.urandom(4).hex()}",
            "object": "promotion_code",
            "active": active,
            "code": code,
            "created": int(time.time()) if created is None else created,
            "customer": customer,
            "customer_account": None,
            "expires_at": None,
            "livemode": False,
            "max_redemptions": max_redemptions,
            "metadata": dict(metadata),
            "promotion": {"type": "coupon", "coupon": coupon},
            "restrictions": {"first_time_transaction": False, "minimum_amount": None},
            "times_redeemed": 0,
        }
        self.promotion_codes[promo["id"]] = promo
        return promo


def _header(request: Request, name: str) -> str:
    return next((v for k, v in request.headers.items() if k.lower() == name.lower()), "")


def _subscription(subscription_id: str, customer: str, start_date: int | None) -> dict:
    now = int(time.time())
    return {
        "id": subscription_id,
        "object": "subscription",
        "customer": customer,
        "status": "active",
        "created": start_date or now,
        "start_date": start_date or now,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "ended_at": None,
        "livemode": False,
        "metadata": {},
        "items": {
            "object": "list",
            "data": [
                {
                    "id": f"si_{subscription_id}",
                    "object": "subscription_item",
                    "price": {"id": "price_pro", "object": "price", "lookup_key": "pro"},
                }
            ],
        },
    }


def _coupon(coupon_id: str, percent_off: float, duration: str = "once") -> dict:
    return {"id": coupon_id, "object": "coupon", "percent_off": percent_off, "duration": duration, "valid": True}


def _coupon_param(form: dict[str, str]) -> str:
    # API versions since 2025 take promotion[type]=coupon + promotion[coupon]; older ones a top-level coupon.
    if "promotion[coupon]" in form:
        if form.get("promotion[type]") != "coupon":
            raise StripeError(400, "promotion[type] must be 'coupon'.", code="parameter_invalid_string")
        return form["promotion[coupon]"]
    if form.get("coupon"):
        return form["coupon"]
    raise StripeError(400, "Missing required param: promotion[coupon].", code="parameter_missing", param="promotion")


def _positive_int(form: dict[str, str], name: str) -> int | None:
    if name not in form:
        return None
    try:
        value = int(form[name])
    except ValueError:
        value = 0
    if value < 1:
        raise StripeError(400, f"Invalid {name}: must be a positive integer.", param=name)
    return value


def _bool(form: dict[str, str], name: str) -> bool:
    if form[name] not in ("true", "false"):
        raise StripeError(400, f"Invalid boolean: {form[name]}", param=name)
    return form[name] == "true"


def _metadata(form: dict[str, str]) -> dict[str, str]:
    return {k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[") and k.endswith("]")}


def _list_filter(promo: dict, query: dict[str, str]) -> bool:
    if "code" in query and promo["code"].lower() != query["code"].lower():
        return False
    if "coupon" in query and promo["promotion"]["coupon"] != query["coupon"]:
        return False
    if "customer" in query and promo["customer"] != query["customer"]:
        return False
    return not ("active" in query and promo["active"] != (query["active"] == "true"))


def _missing_code(promo_id: str) -> StripeError:
    return StripeError(404, f"No such promotion code: '{promo_id}'", code="resource_missing", param="id")
