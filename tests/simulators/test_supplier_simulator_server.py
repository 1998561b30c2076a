"""The supplier simulator over real sockets: its aiohttp.web server and the aiohttp callback client, with the
platform's own Fulu connector as the client (code the simulator shares nothing with)."""

from __future__ import annotations

import asyncio
import json
import socket
from decimal import Decimal
from typing import Any

from kameng.simulators.supplier.app import SupplierSimulatorApp
from kameng.simulators.supplier.core import Knobs, Merchant, SupplierSimulator
from kameng.simulators.supplier.server import serve
from kameng.suppliers.connectors.base import Outcome, TopupKind, TopupRequest
from kameng.suppliers.connectors.fulu import FuluConnector, async_clients_close

SECRET = "server-secret"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Platform:
    """A callback receiver: answers `success` (after `fails` failures) with a chunked body, as some servers do."""

    def __init__(self, fails: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.fails = fails

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            self.received.append(json.loads(await reader.readexactly(length)))
            word = b"fail" if len(self.received) <= self.fails else b"success"
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                         + f"{len(word):x}\r\n".encode() + word + b"\r\n0\r\n\r\n")
            await writer.drain()
        writer.close()


def _scenario(knobs: Knobs, platform: _Platform, body: Any) -> tuple[SupplierSimulator, Any]:
    """Run the simulator and the callback receiver on free ports, then `body(gateway_url, port)`."""
    result: list[Any] = []

    async def main() -> SupplierSimulator:
        receiver = await asyncio.start_server(platform.handle, "127.0.0.1", 0)
        notify = f"http://127.0.0.1:{receiver.sockets[0].getsockname()[1]}/suppliers/callback/1/"
        simulator = SupplierSimulator(merchants=[Merchant("m", SECRET, notify_url=notify)], knobs=knobs, seed=3)
        app = SupplierSimulatorApp(simulator)
        port, ready, stop = _free_port(), asyncio.Event(), asyncio.Event()
        server = asyncio.ensure_future(serve(app, host="127.0.0.1", port=port, ready=ready.set, stop=stop))
        await ready.wait()
        try:
            result.append(await body(f"http://127.0.0.1:{port}/api/getway", port))
            await app.drain()
        finally:
            stop.set()
            await server
            await async_clients_close()
            receiver.close()
            await receiver.wait_closed()
        return simulator

    simulator = asyncio.run(main())
    return simulator, result[0]


def _request(number: str) -> TopupRequest:
    return TopupRequest(kind=TopupKind.MOBILE, customer_order_no=number, charge_account="13812345678",
                        face_value=Decimal("50"), upstream_product_id="", quantity=1, max_price=Decimal("49"))


def test_the_fulu_connector_submits_and_queries_over_the_server() -> None:
    platform = _Platform(fails=1)

    async def body(gateway: str, port: int) -> list[Any]:
        connector = FuluConnector({"gateway_url": gateway, "app_key": "m", "app_secret": SECRET})
        answers = list(await asyncio.gather(*(connector.topup_submit_async(_request(f"N{n}")) for n in range(20))))
        answers.append(await connector.topup_submit_async(_request("N0")))  # the same number again
        while len([item for item in platform.received if item["customer_order_no"] == "N0"]) < 2:
            await asyncio.sleep(0.02)
        answers.append(await connector.topup_query_async("N0"))
        answers.append(await connector.topup_query_async("nobody"))
        return answers

    simulator, answers = _scenario(Knobs(process_ms=0, callback_retry_ms=10), platform, body)

    *submits, again, query, missing = answers
    assert [answer.outcome for answer in submits] == [Outcome.PROCESSING] * 20
    assert (again.outcome, again.code) == (Outcome.UNKNOWN, "3007")  # 已存在: the caller queries, never resubmits
    assert (query.outcome, query.operator_serial[:3]) == (Outcome.SUCCEEDED, "SIM")
    assert missing.outcome == Outcome.NOT_FOUND
    report = simulator.submissions_report()
    assert (report["total_submits"], report["distinct_numbers"], report["resubmitted"]) == (21, 20, ["N0"])
    # 20 callbacks, the first refused once and sent again; each acknowledged once.
    assert (report["callbacks_sent"], report["callbacks_acknowledged"], len(platform.received)) == (21, 20, 21)
    assert {item["customer_order_no"] for item in platform.received} == {f"N{n}" for n in range(20)}


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(data)
        chunks: list[bytes] = []
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_keep_alive_pipelining_close_and_refused_bodies() -> None:
    async def body(gateway: str, port: int) -> list[bytes]:
        loop = asyncio.get_running_loop()
        pipelined = (b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"
                     b"POST /admin/knobs HTTP/1.1\r\nhost: x\r\ncontent-length: 17\r\n\r\n{\"latency_ms\": 1}"
                     b"GET /nowhere HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        chunked = b"POST /api/getway HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
        old = b"GET /healthz HTTP/1.0\r\n\r\n"
        return [await loop.run_in_executor(None, _raw, port, data) for data in (pipelined, chunked, old)]

    simulator, (pipelined, chunked, old) = _scenario(Knobs(), _Platform(), body)

    assert pipelined.count(b"HTTP/1.1 ") == 3
    first, second, third = pipelined.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200")
    assert first.endswith(b"ok")
    assert second.startswith(b"200")
    assert b'"latency_ms": 1.0' in second
    assert third.startswith(b"404")
    assert b"connection: close" in third.lower()
    assert chunked.startswith(b"HTTP/1.1 411")
    assert old.startswith(b"HTTP/1.0 200")  # answered in its own version, the connection closed (_raw returned)
    assert old.endswith(b"\r\n\r\nok")
    assert simulator.knobs.latency_ms == 1.0
