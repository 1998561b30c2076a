"""The HTTP client of the Fulu connector's coroutines (an aiohttp session per event loop, kameng.suppliers.connectors
.fulu) against small servers that answer in each way a real gateway may — and that fail to: whatever goes wrong is
UNKNOWN to the connector (query, never resubmit), and a request is never sent twice."""

from __future__ import annotations

import asyncio
import datetime
import json
import ssl
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings

from kameng.suppliers.connectors.base import Outcome, TopupAnswer, TopupKind, TopupRequest
from kameng.suppliers.connectors.fulu import (
    FuluConnector,
    async_clients_close,
    environment_proxy,
    shared_session,
    sign_text,
)

Answer = Callable[[bytes], Awaitable[bytes | None]]  # request body → raw response bytes (None: never answer)
SECRET = "lean-secret"


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def _serve(answer: Answer, body: Callable[[str, list[bytes]], Awaitable[object]], *, heads: list[bytes] | None = None,
           tls: ssl.SSLContext | None = None) -> tuple[object, list[bytes]]:
    """Run `body(url, requests)` against a server answering each request with `answer`; what it returned and the
    request bodies the server received (their heads into `heads`)."""
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                break
            if heads is not None:
                heads.append(head)
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            requests.append(await reader.readexactly(length))
            raw = await answer(requests[-1])
            if raw is None:
                await asyncio.sleep(10)
                break
            writer.write(raw)
            await writer.drain()
            if b"connection: close" in raw.lower() or (b"content-length" not in raw.lower() and
                                                        b"chunked" not in raw.lower()):
                break
        writer.close()

    async def main() -> object:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
        scheme = "https" if tls else "http"
        url = f"{scheme}://127.0.0.1:{server.sockets[0].getsockname()[1]}/api/getway"
        try:
            return await body(url, requests)
        finally:
            await async_clients_close()
            server.close()

    return asyncio.run(main()), requests


def _ok(payload: dict[str, object]) -> bytes:
    data = json.dumps(payload).encode()
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(data), data)


def _connector(url: str) -> FuluConnector:
    return FuluConnector({"gateway_url": url, "app_key": "k", "app_secret": SECRET, "timeout": 0.5,
                          "connect_timeout": 0.5})


def _request(number: str) -> TopupRequest:
    return TopupRequest(number, TopupKind.MOBILE, "10050", 1, charge_account="13812345678", face_value=Decimal("50"))


def test_the_session_is_sized_for_the_dispatcher_and_verifies_tls() -> None:
    async def main() -> tuple[object, ...]:
        session = shared_session(timeout=10, connect_timeout=5)
        again = shared_session(timeout=10, connect_timeout=5)
        assert isinstance(session.connector, aiohttp.TCPConnector)
        seen = (again is session, session.connector.limit, session.connector._ssl)
        await async_clients_close()
        return seen

    assert asyncio.run(main()) == (True, settings.KAMENG_TOPUP_DISPATCH_THREADS, True)


def test_content_length_chunked_interim_and_read_to_close_answers_one_connection_kept_alive() -> None:
    answers = iter([
        _ok({"n": 1}),
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{\"n\"\r\n3;x=y\r\n: 2\r\n1\r\n}\r\n0\r\n"
        b"trailer: t\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n" + _ok({"n": 3}),
        b"HTTP/1.0 200 OK\r\n\r\n{\"n\": 4}",
    ])
    connections: list[int] = []

    async def answer(_: bytes) -> bytes:
        return next(answers)

    async def body(url: str, requests: list[bytes]) -> list[object]:
        session = shared_session(timeout=2, connect_timeout=2)
        seen: list[object] = []
        for n in range(4):
            async with session.post(url, data=b'{"i": %d}' % n) as response:
                seen.append((response.status, json.loads(await response.read())))
            assert session.connector is not None
            connections.append(len(session.connector._conns))  # the idle kept-alive connections
        return seen

    seen, requests = _serve(answer, body)
    assert seen == [(200, {"n": 1}), (200, {"n": 2}), (200, {"n": 3}), (200, {"n": 4})]
    assert requests == [b'{"i": 0}', b'{"i": 1}', b'{"i": 2}', b'{"i": 3}']
    assert connections == [1, 1, 1, 0]  # kept alive until the HTTP/1.0 answer without a length


@pytest.mark.parametrize(("failure", "message"), [
    ("silence", "福禄接口超时：SocketTimeoutError"),
    ("cut", "福禄接口连接失败：ClientPayloadError"),
    ("garbage", "福禄接口连接失败：ClientResponseError"),
    ("non-200", "福禄接口 HTTP 502"),
    ("unsigned", "福禄接口应答签名不符"),
])
def test_no_answer_a_cut_one_garbage_or_an_error_status_is_unknown_and_sent_once(failure: str, message: str) -> None:
    async def answer(_: bytes) -> bytes | None:
        if failure == "silence":
            return None
        if failure == "cut":
            return b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{\"code\""
        if failure == "garbage":
            return b"NOT HTTP AT ALL\r\n\r\n"
        if failure == "non-200":
            return b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 2\r\n\r\nno"
        return _ok({"code": 0, "message": "ok", "result": json.dumps({"order_state": "success"}), "sign": "x"})

    async def body(url: str, requests: list[bytes]) -> TopupAnswer:
        return await _connector(url).topup_submit_async(_request("L-1"))

    answer_seen, requests = _serve(answer, body)
    assert isinstance(answer_seen, TopupAnswer)
    assert (answer_seen.outcome, answer_seen.message) == (Outcome.UNKNOWN, message)
    assert len(requests) == 1
    assert json.loads(requests[0])["method"] == "fulu.order.mobile.add"


def test_a_connection_refused_is_unknown() -> None:
    async def main() -> TopupAnswer:
        try:
            return await _connector("http://127.0.0.1:9/api/getway").topup_query_async("L-1")
        finally:
            await async_clients_close()

    answer = asyncio.run(main())
    assert (answer.outcome, answer.message) == (Outcome.UNKNOWN, "福禄接口连接失败：ClientConnectorError")


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(tz=datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


def test_an_untrusted_certificate_is_unknown_and_nothing_is_sent(tmp_path: Path) -> None:
    async def answer(_: bytes) -> bytes:
        return _ok({"code": 0})

    async def body(url: str, requests: list[bytes]) -> TopupAnswer:
        return await _connector(url).topup_submit_async(_request("L-1"))

    answer_seen, requests = _serve(answer, body, tls=_self_signed(tmp_path))
    assert isinstance(answer_seen, TopupAnswer)
    assert (answer_seen.outcome, answer_seen.message) == (Outcome.UNKNOWN,
                                                           "福禄接口连接失败：ClientConnectorCertificateError")
    assert requests == []


def test_a_proxy_named_in_the_environment_carries_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    result = json.dumps({"order_id": "S1", "order_state": "processing", "customer_order_no": "P-1"})
    heads: list[bytes] = []

    async def answer(_: bytes) -> bytes:
        return _ok({"code": 0, "message": "ok", "result": result, "sign": sign_text(result, SECRET)})

    async def body(proxy_url: str, requests: list[bytes]) -> Outcome:
        monkeypatch.setenv("HTTP_PROXY", proxy_url.removesuffix("/api/getway"))
        return (await _connector("http://fulu.test/api/getway").topup_query_async("P-1")).outcome

    outcome, requests = _serve(answer, body, heads=heads)
    assert outcome == Outcome.PROCESSING
    assert len(requests) == 1
    assert heads[0].startswith(b"POST http://fulu.test/api/getway HTTP/1.1\r\n")


def test_the_fulu_connector_reads_a_lost_answer_as_unknown_and_a_signed_one_as_processing() -> None:
    result = json.dumps({"order_id": "S1", "order_state": "processing", "customer_order_no": "L-1"})
    answers = iter([_ok({"code": 0, "message": "ok", "result": result, "sign": sign_text(result, SECRET)}), None])

    async def answer(_: bytes) -> bytes | None:
        return next(answers)

    async def body(url: str, requests: list[bytes]) -> list[Outcome]:
        connector = _connector(url)
        return [(await connector.topup_submit_async(_request("L-1"))).outcome,
                (await connector.topup_query_async("L-1")).outcome]

    outcomes, requests = _serve(answer, body)
    assert outcomes == [Outcome.PROCESSING, Outcome.UNKNOWN]
    assert len(requests) == 2
    assert json.loads(requests[0])["method"] == "fulu.order.mobile.add"


def test_no_proxy_keeps_a_gateway_off_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "openapi.fulu.com")
    assert environment_proxy("https://openapi.fulu.com/api/getway") is None
    assert environment_proxy("https://other.test/api/getway") == "http://proxy.test:3128"
    assert environment_proxy("http://other.test/api/getway") is None  # only HTTPS_PROXY named
