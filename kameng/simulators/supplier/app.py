"""The supplier simulator's ASGI app: the Fulu gateway, the callback sender and a small JSON admin.

Routes:
  POST /api/getway                 the Fulu gateway (also /api/gateway)
  GET  /healthz                    "ok"
  GET  /admin/state                knobs, merchants (no secrets), counters
  POST /admin/knobs                {"latency_ms": 200, "fail_rate": 0.1, …} → the knobs now
  POST /admin/merchants            {"app_key", "app_secret", "name", "notify_url", "price_factor", "prices",
                                    "rates": {"refuse_rate"|"fail_rate"|"unknown_rate": 0.5}}
  POST /admin/rates                {"app_key", "refuse_rate", "fail_rate", "unknown_rate"}: one merchant's own
                                   rates (null: back to the global knob)
  POST /admin/stock                {"product_id", "stock" (null: unlimited), "app_key" (optional: every merchant)}
  GET  /admin/submissions          how many times each customer_order_no was submitted, order states, callbacks
  GET  /admin/orders/<number>      one order as the supplier sees it
  POST /admin/reset                forget orders and counters

Everything waits asynchronously (latency, processing, callbacks): one event loop serves hundreds of requests in
flight. The answers are made apart from any server (`gateway_delay`, `gateway_reply`, `reply`): this module's ASGI
entry point serves them to tests (httpx's ASGI transport), aiohttp.web (`server.py`) to everyone else
(`python -m kameng.simulators.supplier`). Callbacks go out through httpx when a transport is given (tests: a mock),
else through `server.CallbackClient` (an aiohttp session). The admin is unauthenticated: bind
the simulator to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx

from kameng.simulators.supplier.core import Merchant, Order, SupplierSimulator

if TYPE_CHECKING:
    from kameng.simulators.supplier.server import CallbackClient

logger = logging.getLogger("kameng.simulators.supplier")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
GATEWAY_PATHS = ("/api/getway", "/api/gateway")
MAX_BODY_BYTES = 1024 * 1024
RATE_KNOBS = ("refuse_rate", "fail_rate", "unknown_rate")
# Callbacks in flight at once. More wait their turn here: queued inside httpx's pool instead, thousands of them made
# every request scan the whole queue (httpcore assigns queued requests to connections in a loop over both), which
# starved the event loop — the gateway stopped answering under a burst of completions.
CALLBACK_CONCURRENCY = 64
CALLBACK_CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str
    hang_seconds: float = 0.0  # a lost answer: wait this long before sending it


class SupplierSimulatorApp:
    def __init__(self, simulator: SupplierSimulator, *,
                 callback_transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.simulator = simulator
        self._callback_transport = callback_transport
        self._callback_client: httpx.AsyncClient | None = None
        self._plain_client: CallbackClient | None = None
        self._callback_slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        reply = await self.answer(scope["method"], scope["path"], await _read_body(receive))
        await _respond(send, reply.status, reply.body, reply.content_type)

    async def answer(self, method: str, path: str, body: bytes) -> Reply:
        """The reply to one request, whichever server carries it: a gateway call after its latency (and, when the
        knobs say so, a hang), anything else at once."""
        if path in GATEWAY_PATHS and method == "POST":
            delay = self.gateway_delay()
            if delay > 0:
                await asyncio.sleep(delay)
            reply = self.gateway_reply(body)
            if reply.hang_seconds:
                await asyncio.sleep(reply.hang_seconds)
            return reply
        return self.reply(method, path, body)

    def reply(self, method: str, path: str, body: bytes) -> Reply:
        """The answer to anything but a gateway call: health, admin, 404."""
        if path == "/healthz":
            return Reply(200, b"ok", "text/plain")
        if path.startswith("/admin/"):
            return _json_reply(*self.admin(method, path.removeprefix("/admin/"), body))
        return _json_reply(404, {"error": "not found"})

    # --- the gateway ----------------------------------------------------------------------------------------------

    def gateway_delay(self) -> float:
        """Seconds to wait before answering a gateway call (the latency knobs)."""
        knobs = self.simulator.knobs
        delay = knobs.latency_ms + (self.simulator.random.uniform(0, knobs.latency_jitter_ms)
                                    if knobs.latency_jitter_ms else 0.0)
        return max(delay, 0.0) / 1000

    def gateway_reply(self, body: bytes) -> Reply:
        """The gateway's answer to this call once its latency has passed (an accepted order starts its way to the
        final state and the callback); a lost answer says how long to hang before it is sent."""
        knobs = self.simulator.knobs
        answer = self.simulator.gateway(body)
        if answer.accepted is not None:
            self._spawn(self._complete(answer.accepted))
        if answer.lost:
            if knobs.unknown_mode == "garbled":
                return Reply(200, b"<html><body>502 Bad Gateway</body></html>", "text/html")
            return Reply(504, b"Gateway Time-out", "text/plain",
                         hang_seconds=knobs.hang_seconds if knobs.unknown_mode == "hang" else 0.0)
        return _json_reply(answer.status, answer.body)

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _complete(self, order: Order) -> None:
        knobs = self.simulator.knobs
        await asyncio.sleep(knobs.process_ms / 1000)
        callback = self.simulator.order_finish(order)
        if callback is None:
            return
        merchant = self.simulator.merchants[order.merchant]
        if knobs.callback_delay_ms > 0:
            await asyncio.sleep(knobs.callback_delay_ms / 1000)
        copies = [self._deliver(order, merchant.notify_url, callback) for _ in range(1 + knobs.callback_duplicates)]
        await asyncio.gather(*copies)

    async def _deliver(self, order: Order, url: str, callback: dict[str, Any]) -> None:
        """POST the callback until the platform answers `success`, at most 1 + callback_retries times."""
        knobs = self.simulator.knobs
        content = json.dumps(callback, ensure_ascii=False).encode("utf-8")
        for attempt in range(1 + knobs.callback_retries):
            if attempt:
                await asyncio.sleep(knobs.callback_retry_ms * attempt / 1000)
            if self._callback_slots is None:
                self._callback_slots = asyncio.Semaphore(CALLBACK_CONCURRENCY)
            try:
                async with self._callback_slots:
                    order.callbacks_sent += 1
                    status, text = await self._post(url, content)
            except (httpx.HTTPError, aiohttp.ClientError, TimeoutError, OSError, ValueError) as error:
                logger.info("callback %s → %s failed: %s", order.customer_order_no, url, type(error).__name__)
                continue
            if status == 200 and text.strip() == b"success":
                order.callbacks_acknowledged += 1
                return
            logger.info("callback %s → %s answered %s", order.customer_order_no, url, status)

    async def _post(self, url: str, content: bytes) -> tuple[int, bytes]:
        """One callback POST: (status, body). Through httpx with a given transport (tests), else the plain client."""
        if self._callback_transport is None:
            if self._plain_client is None:
                from kameng.simulators.supplier.server import CallbackClient

                self._plain_client = CallbackClient(connections=CALLBACK_CONCURRENCY)
            return await self._plain_client.post(url, content, CALLBACK_CONTENT_TYPE)
        response = await self._client().post(url, content=content, headers={"Content-Type": CALLBACK_CONTENT_TYPE})
        return response.status_code, response.content

    def _client(self) -> httpx.AsyncClient:
        if self._callback_client is None:
            self._callback_client = httpx.AsyncClient(
                transport=self._callback_transport, timeout=httpx.Timeout(10.0, connect=5.0),
                limits=httpx.Limits(max_connections=CALLBACK_CONCURRENCY,
                                    max_keepalive_connections=CALLBACK_CONCURRENCY))
        return self._callback_client

    async def tasks_cancel(self) -> None:
        """Stop the completions and callbacks in flight and close the callback client (the server shutting down)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._plain_client is not None:
            await self._plain_client.close()
            self._plain_client = None

    async def drain(self) -> None:
        """Wait for every order completion and callback in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- the admin ------------------------------------------------------------------------------------------------

    def admin(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return 400, {"error": "the body is not JSON"}
        if not isinstance(data, dict):
            return 400, {"error": "the body is not a JSON object"}
        if method == "GET" and path.startswith("orders/"):
            report = self.simulator.order_report(path.removeprefix("orders/"))
            return (200, report) if report is not None else (404, {"error": "no such order"})
        action = {("GET", "state"): self._admin_state, ("GET", "submissions"): self._admin_submissions,
                  ("POST", "knobs"): self._admin_knobs, ("POST", "merchants"): self._admin_merchant,
                  ("POST", "stock"): self._admin_stock, ("POST", "rates"): self._admin_rates,
                  ("POST", "reset"): self._admin_reset}.get((method, path))
        if action is None:
            return 404, {"error": "not found"}
        try:
            return action(data)
        except (KeyError, TypeError, ValueError, ArithmeticError) as error:
            return 400, {"error": repr(error)}

    def _admin_state(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        report = self.simulator.submissions_report()
        report.pop("submissions")
        return 200, {"knobs": self.simulator.knobs.__dict__,
                     "merchants": [merchant.public() for merchant in self.simulator.merchants.values()], **report}

    def _admin_submissions(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, self.simulator.submissions_report()

    def _admin_knobs(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        unknown = self.simulator.knobs.update(data)
        return (400, {"error": f"unknown knobs: {unknown}"}) if unknown else (200, self.simulator.knobs.__dict__)

    def _admin_merchant(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        merchant = merchant_from_dict(data)
        self.simulator.merchant_set(merchant)
        return 200, merchant.public()

    def _admin_stock(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        merchants = self.simulator.merchants
        product_id, stock, app_key = str(data.get("product_id") or ""), data.get("stock"), data.get("app_key")
        targets = [merchants[app_key]] if app_key in merchants else ([] if app_key else list(merchants.values()))
        if not targets or not product_id or (stock is not None and not isinstance(stock, int)):
            return 400, {"error": "product_id, stock (int or null) and a known app_key (or none) are needed"}
        for merchant in targets:
            merchant.stock[product_id] = stock
        return 200, {"product_id": product_id, "stock": stock, "merchants": [m.app_key for m in targets]}

    def _admin_rates(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        merchant = self.simulator.merchants.get(str(data.get("app_key") or ""))
        if merchant is None:
            return 400, {"error": "a known app_key is needed"}
        for name, value in data.items():
            if name == "app_key":
                continue
            if name not in RATE_KNOBS:
                return 400, {"error": f"unknown rate: {name}"}
            if value is None:
                merchant.rates.pop(name, None)
            else:
                merchant.rates[name] = float(value)
        return 200, merchant.public()

    def _admin_reset(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.simulator.reset()
        return 200, {"reset": True}


def merchant_from_dict(data: dict[str, Any]) -> Merchant:
    return Merchant(
        app_key=str(data["app_key"]), app_secret=str(data["app_secret"]), name=str(data.get("name") or ""),
        notify_url=str(data.get("notify_url") or ""), price_factor=Decimal(str(data.get("price_factor") or "1")),
        prices={str(key): Decimal(str(value)) for key, value in (data.get("prices") or {}).items()},
        stock={str(key): (None if value is None else int(value)) for key, value in (data.get("stock") or {}).items()},
        rates={str(key): float(value) for key, value in (data.get("rates") or {}).items() if key in RATE_KNOBS},
    )


async def _read_body(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", f"{content_type}; charset=utf-8".encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _json_reply(status: int, answer: dict[str, Any]) -> Reply:
    return Reply(status, json.dumps(answer, ensure_ascii=False, default=str).encode("utf-8"), "application/json")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
