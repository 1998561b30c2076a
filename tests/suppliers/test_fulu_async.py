"""The Fulu connector's coroutines (the dispatcher awaits them on its event loop): the same answers as the
synchronous methods, against the supplier simulator in-process, and a lost answer is UNKNOWN."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import httpx
import pytest

from kameng.simulators.supplier.core import Merchant, SupplierSimulator
from kameng.suppliers.connectors import fulu
from kameng.suppliers.connectors.base import Outcome, TopupKind, TopupRequest
from kameng.suppliers.connectors.fulu import FuluConnector

SECRET = "async-secret"
CONFIG = {"gateway_url": "https://fulu.test/api/getway", "app_key": "key-a", "app_secret": SECRET}


def _simulator_transport(simulator: SupplierSimulator, *, lose: bool = False) -> httpx.MockTransport:
    async def handler(request: httpx.Request) -> httpx.Response:
        answer = simulator.gateway(request.content)
        if lose:
            raise httpx.ReadTimeout("lost", request=request)
        return httpx.Response(answer.status, content=json.dumps(answer.body, ensure_ascii=False).encode())

    return httpx.MockTransport(handler)


def _request(number: str) -> TopupRequest:
    return TopupRequest(number, TopupKind.MOBILE, "10050", 1, charge_account="13812345678",
                        face_value=Decimal("50"))


@pytest.mark.parametrize("lose", [False, True])
def test_async_submit_and_query_answer_as_the_synchronous_ones(monkeypatch: pytest.MonkeyPatch, lose: bool) -> None:
    simulator = SupplierSimulator(merchants=[Merchant(app_key="key-a", app_secret=SECRET)], seed=1)
    transport = _simulator_transport(simulator, lose=lose)
    connector = FuluConnector(CONFIG)
    assert connector.is_async

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")  # with a proxy named, httpx makes the calls

    async def run() -> tuple[Outcome, Outcome]:
        client = httpx.AsyncClient(transport=transport, trust_env=False)
        monkeypatch.setattr(fulu, "shared_async_client", lambda **_: client)
        try:
            submitted = await connector.topup_submit_async(_request("A-1"))
            queried = await connector.topup_query_async("A-1")
        finally:
            await client.aclose()
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
