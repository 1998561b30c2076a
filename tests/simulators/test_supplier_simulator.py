"""The supplier simulator in-process: its ASGI app driven by httpx, callbacks caught by a mock transport."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from kameng.simulators.supplier.__main__ import build_parser, simulator_from_options
from kameng.simulators.supplier.app import SupplierSimulatorApp
from kameng.simulators.supplier.core import Knobs, Merchant, SupplierSimulator

SECRET_A, SECRET_B = "secret-a", "secret-b"
PHONE = "13812345678"


def _sign(payload: dict[str, Any], secret: str) -> str:
    text = json.dumps({key: value for key, value in payload.items() if key != "sign"},
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.md5(("".join(sorted(text)) + secret).encode("utf-8")).hexdigest()


def _envelope(method: str, biz: dict[str, Any], *, app_key: str = "a", secret: str = SECRET_A) -> dict[str, str]:
    payload = {"app_key": app_key, "method": method, "timestamp": "2026-12-03 21:00:00", "version": "2.0",
               "format": "json", "charset": "utf-8", "sign_type": "md5", "app_auth_token": "",
               "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":"))}
    payload["sign"] = _sign(payload, secret)
    return payload


class Harness:
    def __init__(self, knobs: Knobs, callback_reply: Callable[[int], str]) -> None:
        self.simulator = SupplierSimulator(merchants=[
            Merchant("a", SECRET_A, name="A", notify_url="http://shop.test/suppliers/callback/1/"),
            Merchant("b", SECRET_B, name="B", notify_url="http://shop.test/suppliers/callback/2/",
                     price_factor=Decimal("1.01")),
        ], knobs=knobs, seed=7)
        self.callbacks: list[dict[str, Any]] = []

        async def catch(request: httpx.Request) -> httpx.Response:
            self.callbacks.append({"url": str(request.url), **json.loads(request.content)})
            return httpx.Response(200, text=callback_reply(len(self.callbacks)))

        self.app = SupplierSimulatorApp(self.simulator, callback_transport=httpx.MockTransport(catch))
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://sim")

    async def call(self, method: str, biz: dict[str, Any], **keys: str) -> httpx.Response:
        return await self.client.post("/api/getway", json=_envelope(method, biz, **keys))

    async def result(self, method: str, biz: dict[str, Any], **keys: str) -> Any:
        response = await self.call(method, biz, **keys)
        body = response.json()
        assert body["code"] == 0, body
        return json.loads(body["result"])


def _run(scenario: Callable[[Harness], Awaitable[None]], *, knobs: Knobs | None = None,
         callback_reply: Callable[[int], str] = lambda n: "success") -> Harness:
    harness = Harness(knobs or Knobs(process_ms=0, callback_retry_ms=0), callback_reply)

    async def main() -> None:
        await scenario(harness)
        await harness.app.drain()
        await harness.client.aclose()

    asyncio.run(main())
    return harness


def _mobile(number: str, value: int = 30) -> dict[str, Any]:
    return {"customer_order_no": number, "charge_phone": PHONE, "charge_value": value}


def test_goods_list_prices_differ_per_merchant() -> None:
    rows: dict[str, Any] = {}

    async def scenario(h: Harness) -> None:
        rows["a"] = await h.result("fulu.goods.list.get", {})
        rows["b"] = await h.result("fulu.goods.list.get", {}, app_key="b", secret=SECRET_B)

    _run(scenario)
    prices = {key: {row["product_id"]: row["purchase_price"] for row in value} for key, value in rows.items()}
    assert (prices["a"]["10030"], prices["b"]["10030"]) == (29.4, 29.69)
    assert rows["a"][0]["product_type"] == "话费"


def test_bad_signature_and_unknown_key_are_refused() -> None:
    codes: list[int] = []

    async def scenario(h: Harness) -> None:
        codes.append((await h.call("fulu.order.mobile.add", _mobile("K1"), secret="wrong")).json()["code"])
        codes.append((await h.call("fulu.order.mobile.add", _mobile("K1"), app_key="nobody")).json()["code"])
        codes.append((await h.client.post("/api/getway", content=b"not json")).json()["code"])

    harness = _run(scenario)
    assert codes == [1002, 1001, 1000]
    assert harness.simulator.orders == {}
    assert harness.simulator.submissions_report()["total_submits"] == 0


def test_an_order_is_accepted_once_counted_every_time_and_called_back_signed() -> None:
    answers: list[Any] = []

    async def scenario(h: Harness) -> None:
        answers.append(await h.result("fulu.order.mobile.add", _mobile("K1")))
        answers.append((await h.call("fulu.order.mobile.add", _mobile("K1"))).json())
        await h.app.drain()
        answers.append(await h.result("fulu.order.info.get", {"customer_order_no": "K1"}))
        answers.append((await h.client.get("/admin/submissions")).json())

    harness = _run(scenario)
    accepted, duplicate, query, report = answers
    assert (accepted["order_state"], accepted["order_type"], accepted["order_price"]) == ("processing", 1, 29.4)
    assert duplicate["code"] == 3007
    assert (query["order_state"], query["operator_serial_number"]) == ("success", harness.callbacks[0][
        "operator_serial_number"])
    assert report["submissions"] == {"K1": 2}
    assert (report["orders"], report["callbacks_sent"], report["callbacks_acknowledged"]) == (1, 1, 1)
    [callback] = harness.callbacks
    assert callback.pop("url") == "http://shop.test/suppliers/callback/1/"
    assert callback["sign"] == _sign(callback, SECRET_A)
    assert (callback["customer_order_no"], callback["order_status"], callback["price"]) == ("K1", "success",
                                                                                             "29.4000")


def test_direct_and_card_orders() -> None:
    answers: list[Any] = []

    async def scenario(h: Harness) -> None:
        answers.append(await h.result("fulu.order.direct.add", {
            "customer_order_no": "D1", "product_id": "20300", "charge_account": "player", "buy_num": 1,
            "charge_game_region": "华东一区"}))
        answers.append(await h.result("fulu.order.card.add",
                                      {"customer_order_no": "C1", "product_id": "30001", "buy_num": 2}))
        answers.append((await h.call("fulu.order.direct.add", {"customer_order_no": "D2", "product_id": "30001",
                                                               "charge_account": "x"})).json())
        await h.app.drain()
        answers.append(await h.result("fulu.order.info.get", {"customer_order_no": "C1"}))

    _run(scenario)
    direct, card, wrong_kind, card_done = answers
    assert (direct["order_type"], card["order_type"]) == (4, 3)
    assert wrong_kind["code"] == 3001
    assert len(card_done["cards"]) == 2
    assert all(card["card_pwd"] for card in card_done["cards"])


def test_stock_and_price_ceiling_refuse_before_accepting() -> None:
    codes: list[int] = []

    async def scenario(h: Harness) -> None:
        await h.client.post("/admin/stock", json={"product_id": "10050", "stock": 1, "app_key": "a"})
        codes.append((await h.call("fulu.order.mobile.add", _mobile("S1", 50))).json()["code"])
        codes.append((await h.call("fulu.order.mobile.add", _mobile("S2", 50))).json()["code"])
        codes.append((await h.call("fulu.order.mobile.add", {**_mobile("S3"), "customer_price": 29})).json()["code"])
        codes.append((await h.call("fulu.order.mobile.add", _mobile("S4", 77))).json()["code"])
        codes.append((await h.call("fulu.order.mobile.add", {**_mobile("S5"), "charge_phone": "123"})).json()["code"])

    harness = _run(scenario)
    assert codes == [0, 3003, 3004, 3001, 1004]
    assert list(harness.simulator.orders) == [("a", "S1")]


def test_refusals_failures_and_lost_replies_by_the_knobs() -> None:
    seen: list[Any] = []

    async def scenario(h: Harness) -> None:
        h.simulator.knobs.update({"refuse_rate": 1})
        seen.append((await h.call("fulu.order.mobile.add", _mobile("X1"))).json()["code"])
        h.simulator.knobs.update({"refuse_rate": 0, "fail_rate": 1})
        await h.result("fulu.order.mobile.add", _mobile("X2"))
        h.simulator.knobs.update({"fail_rate": 0, "unknown_rate": 1})
        seen.append((await h.call("fulu.order.mobile.add", _mobile("X3"))).status_code)
        h.simulator.knobs.update({"unknown_mode": "garbled"})
        response = await h.call("fulu.order.mobile.add", _mobile("X4"))
        seen.append((response.status_code, response.text[:6]))
        await h.app.drain()
        h.simulator.knobs.update({"unknown_rate": 0})
        for number in ("X2", "X3", "X4"):
            seen.append((await h.result("fulu.order.info.get", {"customer_order_no": number}))["order_state"])

    harness = _run(scenario)
    assert seen == [3005, 504, (200, "<html>"), "failed", "success", "success"]
    assert [callback["order_status"] for callback in harness.callbacks] == ["failed", "success", "success"]


def test_duplicate_and_retried_callbacks() -> None:
    knobs = Knobs(process_ms=0, callback_retry_ms=0, callback_duplicates=1, callback_retries=2)

    async def scenario(h: Harness) -> None:
        await h.result("fulu.order.mobile.add", _mobile("B1"))

    # The platform fails the first answer: that copy is retried; the duplicate copy is acknowledged at once.
    harness = _run(scenario, knobs=knobs, callback_reply=lambda n: "fail" if n == 1 else "success")
    order = harness.simulator.orders[("a", "B1")]
    assert (len(harness.callbacks), order.callbacks_sent, order.callbacks_acknowledged) == (3, 3, 2)


def test_latency_is_waited_concurrently() -> None:
    elapsed: list[float] = []

    async def scenario(h: Harness) -> None:
        h.simulator.knobs.update({"latency_ms": 300})
        started = time.monotonic()
        await asyncio.gather(*(h.call("fulu.order.mobile.add", _mobile(f"P{n}")) for n in range(40)))
        elapsed.append(time.monotonic() - started)

    harness = _run(scenario)
    assert len(harness.simulator.orders) == 40
    assert elapsed[0] < 40 * 0.3 / 4  # one after the other would take 12 s


def test_admin_knobs_merchants_and_reset() -> None:
    answers: list[httpx.Response] = []

    async def scenario(h: Harness) -> None:
        answers.append(await h.client.post("/admin/knobs", json={"latency_ms": 5, "callbacks_enabled": "0"}))
        answers.append(await h.client.post("/admin/knobs", json={"nope": 1}))
        answers.append(await h.client.post("/admin/merchants", json={"app_key": "c", "app_secret": "sc",
                                                                     "price_factor": "0.9"}))
        await h.result("fulu.order.mobile.add", _mobile("Z1"), app_key="c", secret="sc")
        answers.append(await h.client.get("/admin/orders/Z1"))
        answers.append(await h.client.post("/admin/reset"))
        answers.append(await h.client.get("/admin/state"))

    harness = _run(scenario)
    knobs, unknown, merchant, order, reset, state = answers
    assert (knobs.status_code, knobs.json()["latency_ms"], knobs.json()["callbacks_enabled"]) == (200, 5.0, False)
    assert unknown.status_code == 400
    assert merchant.json()["prices"]["10030"] == "26.46"
    assert (order.json()["order_price"], order.json()["submissions"]) == (26.46, 1)
    assert reset.json() == {"reset": True}
    assert (state.json()["orders"], state.json()["total_submits"]) == (0, 0)
    assert "secret" not in json.dumps(state.json()["merchants"])
    assert harness.callbacks == []


def test_command_line_merchants_and_environment_knobs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAMENG_SUPPLIER_SIM_LATENCY_MS", "200")
    options = build_parser().parse_args(["--merchant", "k1:s1:0.95:http://127.0.0.1:8000/suppliers/callback/3/",
                                         "--fail-rate", "0.1", "--callbacks-enabled", "false"])

    simulator = simulator_from_options(options)

    merchant = simulator.merchants["k1"]
    assert (merchant.app_secret, str(merchant.price_factor), merchant.notify_url) == (
        "s1", "0.95", "http://127.0.0.1:8000/suppliers/callback/3/")
    assert (simulator.knobs.latency_ms, simulator.knobs.fail_rate, simulator.knobs.callbacks_enabled) == (
        200.0, 0.1, False)


def test_one_merchant_can_misbehave_alone() -> None:
    codes: list[Any] = []

    async def scenario(h: Harness) -> None:
        answer = await h.client.post("/admin/rates", json={"app_key": "a", "refuse_rate": 1})
        codes.append(answer.json()["rates"])
        codes.append((await h.call("fulu.order.mobile.add", _mobile("M1"))).json()["code"])
        other = await h.call("fulu.order.mobile.add", _mobile("M2"), app_key="b", secret=SECRET_B)
        codes.append(other.json()["code"])
        await h.client.post("/admin/rates", json={"app_key": "a", "refuse_rate": None})
        codes.append((await h.call("fulu.order.mobile.add", _mobile("M3"))).json()["code"])
        codes.append((await h.client.post("/admin/rates", json={"app_key": "a", "bogus": 1})).status_code)

    _run(scenario)
    assert codes == [{"refuse_rate": 1.0}, 3005, 0, 0, 400]
