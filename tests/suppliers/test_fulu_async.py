"""The Fulu connector's coroutines (the dispatcher awaits them on its event loop): the same answers as the
synchronous methods, against the supplier simulator in-process, and a lost answer is UNKNOWN."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiohttp import web

from kameng.simulators.supplier.core import Merchant, SupplierSimulator
from kameng.suppliers.connectors.base import Outcome, TopupKind, TopupRequest
from kameng.suppliers.connectors.fulu import FuluConnector, async_clients_close

SECRET = "async-secret"
CONFIG = {"gateway_url": "https://fulu.test/api/getway", "app_key": "key-a", "app_secret": SECRET}


async def _simulator_server(simulator: SupplierSimulator, *, lose: bool) -> web.AppRunner:
    """The simulator's gateway behind a local aiohttp server; `lose`: it takes the call and never answers in time."""

    async def gateway(request: web.Request) -> web.Response:
        answer = simulator.gateway(await request.read())
        if lose:
            await asyncio.sleep(5)
        return web.Response(status=answer.status, body=json.dumps(answer.body, ensure_ascii=False).encode())

    application = web.Application()
    application.router.add_post("/api/getway", gateway)
    runner = web.AppRunner(application, shutdown_timeout=0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def _request(number: str) -> TopupRequest:
    return TopupRequest(number, TopupKind.MOBILE, "10050", 1, charge_account="13812345678",
                        face_value=Decimal("50"))


@pytest.mark.parametrize("lose", [False, True])
def test_async_submit_and_query_answer_as_the_synchronous_ones(lose: bool) -> None:
    simulator = SupplierSimulator(merchants=[Merchant(app_key="key-a", app_secret=SECRET)], seed=1)

    async def run() -> tuple[Outcome, Outcome]:
        runner = await _simulator_server(simulator, lose=lose)
        port = runner.addresses[0][1]
        connector = FuluConnector({**CONFIG, "gateway_url": f"http://127.0.0.1:{port}/api/getway", "timeout": 0.5})
        assert connector.is_async
        try:
            submitted = await connector.topup_submit_async(_request("A-1"))
            queried = await connector.topup_query_async("A-1")
        finally:
            await async_clients_close()
            await runner.cleanup()
        return submitted.outcome, queried.outcome

    submitted, queried = asyncio.run(run())
    if lose:  # the simulator took it, the answer never came: unknown, never a failure
        assert (submitted, queried) == (Outcome.UNKNOWN, Outcome.UNKNOWN)
    else:
        assert (submitted, queried) == (Outcome.PROCESSING, Outcome.PROCESSING)
    assert simulator.submissions["A-1"] == 1


def test_a_connector_given_its_own_client_is_called_synchronously() -> None:
    connector = FuluConnector(CONFIG, client=httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(200, json={"code": 0}))))
    assert not connector.is_async


def test_a_prepared_call_is_signed_when_prepared_and_sent_only_when_awaited(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatcher prepares its calls in the claim thread (body built and signed there) and awaits them on its
    event loop: preparing sends nothing, awaiting sends the prepared body once and builds nothing more."""
    simulator = SupplierSimulator(merchants=[Merchant(app_key="key-a", app_secret=SECRET)], seed=1)

    async def run() -> tuple[int, int, Outcome, Outcome]:
        runner = await _simulator_server(simulator, lose=False)
        port = runner.addresses[0][1]
        connector = FuluConnector({**CONFIG, "gateway_url": f"http://127.0.0.1:{port}/api/getway", "timeout": 0.5})
        built: list[str] = []
        body = connector._body

        def counted(method: str, biz: Any) -> bytes:
            built.append(method)
            return body(method, biz)

        monkeypatch.setattr(connector, "_body", counted)
        try:
            submit = connector.topup_submit_prepared(_request("P-1"))
            query = connector.topup_query_prepared("P-1")
            built_before = len(built)
            await asyncio.sleep(0.05)
            assert "P-1" not in simulator.submissions  # nothing sent yet
            submitted, queried = await submit(), await query()
        finally:
            await async_clients_close()
            await runner.cleanup()
        return built_before, len(built), submitted.outcome, queried.outcome

    built_before, built_after, submitted, queried = asyncio.run(run())
    assert (built_before, built_after) == (2, 2)
    assert (submitted, queried) == (Outcome.PROCESSING, Outcome.PROCESSING)
    assert simulator.submissions["P-1"] == 1
