"""What every provider stand-in shares: an HTTP server on loopback, a record of every request,
an idempotency store, and faults that a test can switch on over HTTP or in process.

Control endpoints (same on every stand-in):
    GET  /__sandbox__/requests          every request received, oldest first
    POST /__sandbox__/faults            {"method": "POST", "path": "^/v1/transfers$", "mode": ..., "times": 1}
    POST /__sandbox__/latency           {"seconds": 0.02}
    POST /__sandbox__/reset             forget everything
    GET  /__sandbox__/state             the provider's objects (provider specific)

Fault modes: "timeout_after_commit" (do the work, then answer only after `delay` seconds, when
the client has given up), "error_500" (answer 500 without doing the work), "error_500_after_commit"
(do the work, answer 500), "drop_connection" (close the socket without doing the work),
"drop_after_commit" (do the work, close the socket), "status" (answer `status` and `body` without
doing the work).
"""

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Json = Any
Handler = Callable[["Request"], tuple[int, Json]]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    match: re.Match | None = None

    @property
    def json(self) -> Json:
        return json.loads(self.body or b"{}")

    @property
    def form(self) -> dict[str, str]:
        """Stripe's form encoding, flattened: metadata[x]=y stays as the key 'metadata[x]'."""
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass
class Fault:
    method: str
    path: str
    mode: str
    times: int = 1
    delay: float = 3.0
    status: int = 500
    body: Json = None

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and self.method == method and re.search(self.path, path) is not None


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Json
    status: int = 0
    fault: str = ""
    at: float = field(default_factory=time.time)


class IdempotencyConflict(Exception):
    """The same key came back with a different request."""


class IdempotencyInFlight(Exception):
    """A request with this key is still being processed."""


class IdempotencyStore:
    """Keeps the first response for a key and replays it, as Stripe and Square document."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: dict[str, tuple[str, int, Json]] = {}
        self._in_flight: set[str] = set()

    def run(self, key: str, fingerprint: str, compute: Callable[[], tuple[int, Json]]) -> tuple[int, Json]:
        with self._lock:
            if key in self._results:
                seen, status, body = self._results[key]
                if seen != fingerprint:
                    raise IdempotencyConflict(key)
                return status, body
            if key in self._in_flight:
                raise IdempotencyInFlight(key)
            self._in_flight.add(key)
        try:
            status, body = compute()
            with self._lock:
                self._results[key] = (fingerprint, status, body)
            return status, body
        finally:
            with self._lock:
                self._in_flight.discard(key)

    def clear(self) -> None:
        with self._lock:
            self._results.clear()
            self._in_flight.clear()


class StandIn:
    """Base class: subclasses declare ROUTES = [(method, path regex, handler name)]."""

    name = "standin"
    ROUTES: list[tuple[str, str, str]] = []

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.latency = 0.0
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.idempotency = IdempotencyStore()
        self._routes = [(m, re.compile(p), getattr(self, h)) for m, p, h in self.ROUTES]
        self.reset_state()

    # --- provider state, overridden -------------------------------------------------------
    def reset_state(self) -> None:
        pass

    def state(self) -> Json:
        return {}

    def authorized(self, request: Request) -> bool:
        return True

    # --- control ------------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.faults.clear()
            self.latency = 0.0
            self.idempotency.clear()
            self.reset_state()

    def add_fault(self, **spec: Any) -> Fault:
        fault = Fault(**spec)
        with self.lock:
            self.faults.append(fault)
        return fault

    def requests_to(self, method: str, path_regex: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == method and re.search(path_regex, r.path)]

    # --- dispatch -------------------------------------------------------------------------
    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def route(self, request: Request) -> tuple[int, Json]:
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if method == request.method and match:
                if not self.authorized(request):
                    return 401, self.error_body(401, "UNAUTHORIZED", "Missing or invalid credentials.")
                request.match = match
                return handler(request)
        return 404, self.error_body(404, "NOT_FOUND", f"No route {request.method} {request.path}")

    def error_body(self, status: int, code: str, message: str) -> Json:
        return {"error": code, "message": message}


def _control(standin: StandIn, request: Request) -> tuple[int, Json]:
    action = request.path.removeprefix("/__sandbox__/")
    if action == "requests":
        with standin.lock:
            return 200, [r.__dict__ for r in standin.requests]
    if action == "faults" and request.method == "POST":
        standin.add_fault(**request.json)
        return 200, {"ok": True}
    if action == "latency" and request.method == "POST":
        standin.latency = float(request.json.get("seconds", 0))
        return 200, {"ok": True}
    if action == "reset" and request.method == "POST":
        standin.reset()
        return 200, {"ok": True}
    if action == "state":
        with standin.lock:
            return 200, standin.state()
    return 404, {"error": "unknown control action"}


def make_handler(standin: StandIn) -> type[BaseHTTPRequestHandler]:
    class StandInHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            split = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = Request(self.command, split.path, parse_qs(split.query), dict(self.headers.items()), body)
            if split.path.startswith("/__sandbox__/"):
                self._reply(*_control(standin, request))
                return
            if standin.latency:
                time.sleep(standin.latency)
            fault = standin.take_fault(self.command, split.path)
            recorded = Recorded(
                self.command,
                split.path,
                request.query,
                dict(self.headers.items()),
                _decode(body),
                fault=fault.mode if fault else "",
            )
            with standin.lock:
                standin.requests.append(recorded)
            self._serve_with_fault(standin, request, fault, recorded)

        def _serve_with_fault(
            self, standin: StandIn, request: Request, fault: Fault | None, recorded: Recorded
        ) -> None:
            mode = fault.mode if fault else ""
            if mode == "drop_connection":
                self._drop()
                return
            if mode in ("error_500", "status"):
                status = 500 if mode == "error_500" else fault.status
                recorded.status = status
                self._reply(status, fault.body or standin.error_body(status, "INTERNAL_SERVER_ERROR", "injected"))
                return
            status, payload = standin.route(request)
            recorded.status = status
            if mode == "timeout_after_commit":
                time.sleep(fault.delay)
            elif mode == "drop_after_commit":
                self._drop()
                return
            elif mode == "error_500_after_commit":
                status, payload = 500, standin.error_body(500, "INTERNAL_SERVER_ERROR", "injected after commit")
            self._reply(status, payload)

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def _reply(self, status: int, payload: Json) -> None:
            data = json.dumps(payload, default=str).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    return StandInHandler


def _decode(body: bytes) -> Json:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return {k: v[-1] for k, v in parse_qs(body.decode(errors="replace")).items()}


class RunningStandIn:
    """A stand-in served on a background thread: `.url`, `.app` (the StandIn), `.stop()`."""

    def __init__(self, app: StandIn, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.server = ThreadingHTTPServer((host, port), make_handler(app))
        # Accepted sockets inherit it: without it every keep-alive request stalls ~40 ms (Nagle on the
        # handler's separate header and body writes meets the client's delayed ACK).
        self.server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"standin-{app.name}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
