"""The lean HTTP/1.1 client of the Fulu connector's coroutines (kameng.suppliers.connectors.http11) against small
servers that answer in each way a real gateway may — and that fail to: whatever goes wrong is an error the
connector reads as UNKNOWN (query, never resubmit), and a request is never sent twice by the client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest

from kameng.suppliers.connectors import http11
from kameng.suppliers.connectors.base import Outcome, TopupKind, TopupRequest
from kameng.suppliers.connectors.fulu import FuluConnector, async_clients_close, sign_text
from kameng.suppliers.connectors.http11 import Http11Client, HttpError, HttpTimeoutError

Answer = Callable[[bytes], Awaitable[bytes | None]]  # request body → raw response bytes (None: never answer)


def _serve(answer: Answer, body: Callable[[str, list[bytes]], Awaitable[object]]) -> tuple[object, list[bytes]]:
    """Run `body(url, requests)` against a server answering each request with `answer`; what it returned and the
    request bodies the server received."""
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            requests.append(await reader.readexactly(length))
            raw = await answer(requests[-1])
            if raw is None:
                await asyncio.sleep(10)
                break
            writer.write(raw)
            await writer.drain()
            if b"connection: close" in raw.lower() or (b"content-length" not in raw.lower() and \
                    b"chunked" not in raw.lower()):
                break
        writer.close()

    async def main() -> object:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/api/getway"
        try:
            return await body(url, requests)
        finally:
            await async_clients_close()
            server.close()

    return asyncio.run(main()), requests


def _ok(payload: dict[str, object]) -> bytes:
    data = json.dumps(payload).encode()
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(data), data)


def test_content_length_chunked_and_read_to_close_answers_on_kept_alive_connections() -> None:
    answers = iter([
        _ok({"n": 1}),
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{\"n\"\r\n3;x=y\r\n: 2\r\n1\r\n}\r\n0\r\n"
        b"trailer: t\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n" + _ok({"n": 3}),
        b"HTTP/1.0 200 OK\r\n\r\n{\"n\": 4}",
    ])

    async def answer(_: bytes) -> bytes:
        return next(answers)

    async def body(url: str, requests: list[bytes]) -> list[object]:
        client = Http11Client(timeout=2, connect_timeout=2)
        seen: list[object] = []
        for n in range(4):
            response = await client.post(url, b'{"i": %d}' % n, content_type="application/json")
            seen.append((response.status, json.loads(response.body)))
        seen.append(sum(len(connections) for connections in client.idle.values()))
        await client.aclose()
        return seen

    seen, requests = _serve(answer, body)
    assert seen == [(200, {"n": 1}), (200, {"n": 2}), (200, {"n": 3}), (200, {"n": 4}), 0]
    assert requests == [b'{"i": 0}', b'{"i": 1}', b'{"i": 2}', b'{"i": 3}']


@pytest.mark.parametrize("failure", ["silence", "cut", "garbage"])
def test_no_answer_a_cut_answer_or_garbage_is_an_error_and_the_request_is_sent_once(
        failure: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def answer(_: bytes) -> bytes | None:
        if failure == "silence":
            return None
        if failure == "cut":
            return b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{\"code\""
        return b"NOT HTTP AT ALL\r\n\r\n"

    async def body(url: str, requests: list[bytes]) -> object:
        client = Http11Client(timeout=0.5, connect_timeout=0.5)
        try:
            await client.post(url, b"{}", content_type="application/json")
        except HttpError as error:
            return type(error)
        return None

    raised, requests = _serve(answer, body)
    assert raised is (HttpTimeoutError if failure == "silence" else HttpError)
    assert requests == [b"{}"]


def test_a_connection_refused_is_an_error() -> None:
    async def main() -> None:
        client = Http11Client(timeout=1, connect_timeout=1)
        await client.post("http://127.0.0.1:9/api/getway", b"{}", content_type="application/json")

    with pytest.raises(HttpError):
        asyncio.run(main())


def test_the_fulu_connector_reads_a_lost_answer_as_unknown_and_a_signed_one_as_processing() -> None:
    secret = "lean-secret"
    result = json.dumps({"order_id": "S1", "order_state": "processing", "customer_order_no": "L-1"})
    answers = iter([_ok({"code": 0, "message": "ok", "result": result, "sign": sign_text(result, secret)}), None])

    async def answer(_: bytes) -> bytes | None:
        return next(answers)

    async def body(url: str, requests: list[bytes]) -> list[Outcome]:
        connector = FuluConnector({"gateway_url": url, "app_key": "k", "app_secret": secret, "timeout": 0.5})
        request = TopupRequest("L-1", TopupKind.MOBILE, "10050", 1, charge_account="13812345678",
                               face_value=Decimal("50"))
        return [(await connector.topup_submit_async(request)).outcome,
                (await connector.topup_query_async("L-1")).outcome]

    outcomes, requests = _serve(answer, body)
    assert outcomes == [Outcome.PROCESSING, Outcome.UNKNOWN]
    assert len(requests) == 2
    assert json.loads(requests[0])["method"] == "fulu.order.mobile.add"


def test_a_proxy_in_the_environment_keeps_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not http11.proxies_configured() or pytest.skip("the environment names a proxy")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    assert http11.proxies_configured()
