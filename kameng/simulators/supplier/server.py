"""The simulator's own HTTP/1.1: a lean server for its app (app.py) and a lean client for its callbacks.

Why not granian + ASGI + httpx (the first version): in a profile of bench/topup.py the simulator spent most of its
CPU outside the protocol — httpx/httpcore sending the callbacks (request models, the pool's bookkeeping, anyio
streams) and the ASGI bridge's futures for every request — so the test double, not the platform, took a third of
two cores. Both ends here are plain asyncio on one event loop: a request is parsed from the bytes received, a
gateway call waits its latency on a timer (no task), the answer is written with one `write`. Enough of HTTP/1.1 for
what talks to it — keep-alive and pipelined requests answered in order, `Content-Length` bodies (a chunked request
is refused with 411), `Connection: close` honoured — and nothing more: it is bound to 127.0.0.1 beside the platform.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from kameng.simulators.supplier.app import GATEWAY_PATHS, MAX_BODY_BYTES, Reply, SupplierSimulatorApp

MAX_HEAD_BYTES = 64 * 1024
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 411: "Length Required", 413: "Payload Too Large",
           504: "Gateway Timeout"}
CALLBACK_TIMEOUT_SECONDS = 10.0


def _head(status: int, content_type: str, length: int, *, keep_alive: bool) -> bytes:
    return (f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\ncontent-type: {content_type}; charset=utf-8\r\n"
            f"content-length: {length}\r\n{'' if keep_alive else 'connection: close' + chr(13) + chr(10)}\r\n"
            ).encode("latin-1")


class _Connection(asyncio.Protocol):
    """One client connection: requests parsed as their bytes arrive, answered one at a time in order."""

    def __init__(self, app: SupplierSimulatorApp, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a request is being answered; the next one waits in the buffer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                self._answer(Reply(413, b"head too large", "text/plain"), keep_alive=False)
            return
        try:
            request_line, *lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            method, target, version = request_line.split(" ", 2)
        except ValueError:
            self._answer(Reply(400, b"bad request", "text/plain"), keep_alive=False)
            return
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._answer(Reply(411, b"a Content-Length is needed", "text/plain"), keep_alive=False)
            return
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._answer(Reply(413 if length > 0 else 400, b"bad body length", "text/plain"), keep_alive=False)
            return
        if len(self.buffer) < end + 4 + length:
            return  # the body is still coming
        body = bytes(self.buffer[end + 4:end + 4 + length])
        del self.buffer[:end + 4 + length]
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        path = target.split("?", 1)[0]
        self.busy = True
        if path in GATEWAY_PATHS and method == "POST":
            # The latency on a timer: the answer is made when it is due, as the ASGI entry point makes it.
            self.loop.call_later(self.app.gateway_delay(), self._gateway, body, keep_alive)
        else:
            self._answer(self.app.reply(method, path, body), keep_alive=keep_alive)

    def _gateway(self, body: bytes, keep_alive: bool) -> None:
        reply = self.app.gateway_reply(body)
        if reply.hang_seconds:
            self.loop.call_later(reply.hang_seconds, self._answer, reply, keep_alive)
        else:
            self._answer(reply, keep_alive=keep_alive)

    def _answer(self, reply: Reply, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        transport.write(_head(reply.status, reply.content_type, len(reply.body), keep_alive=keep_alive) + reply.body)
        if not keep_alive:
            transport.close()
            return
        self.busy = False
        if self.buffer:
            self._next()


async def serve(app: SupplierSimulatorApp, *, host: str, port: int, ready: Callable[[], None] | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Serve the app until `stop` is set (forever without one)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(app, loop), host, port, backlog=2048, reuse_address=True)
    if ready is not None:
        ready()
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        server.close()
        await server.wait_closed()
        await app.tasks_cancel()


# --- the callbacks' client ------------------------------------------------------------------------------------------

class _ClientConnection(asyncio.Protocol):
    """A keep-alive connection to one origin; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiting: asyncio.Future[tuple[int, bytes]] | None = None
        self.is_open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport, self.is_open = transport, True

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_open = False
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(ConnectionError("connection closed before the answer"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiting is None or self.waiting.done():
            return
        parsed = _response_of(self.buffer)
        if parsed is None:
            return
        status, body, used, keep_alive = parsed
        del self.buffer[:used]
        if not keep_alive and self.transport is not None:
            self.is_open = False
            self.transport.close()
        self.waiting.set_result((status, body))

    def request(self, data: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self.buffer.clear()
        self.waiting = loop.create_future()
        self.transport.write(data)
        return self.waiting


def _response_of(buffer: bytearray) -> tuple[int, bytes, int, bool] | None:  # noqa: PLR0911 - one per incomplete case
    """(status, body, bytes used, keep-alive) of a whole response at the start of `buffer`, None while incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    status_line, *lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    version, status_text = status_line.split(" ", 2)[:2]
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    start = end + 4
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, position = bytearray(), start
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size = int(bytes(buffer[position:line_end]).split(b";", 1)[0], 16)
            if size == 0:
                trailer_end = buffer.find(b"\r\n\r\n", line_end)
                if trailer_end < 0:
                    return None
                return int(status_text), bytes(body), trailer_end + 4, keep_alive
            if len(buffer) < line_end + 2 + size + 2:
                return None
            body += buffer[line_end + 2:line_end + 2 + size]
            position = line_end + 2 + size + 2
    if "content-length" in headers:
        length = int(headers["content-length"])
        if len(buffer) < start + length:
            return None
        return int(status_text), bytes(buffer[start:start + length]), start + length, keep_alive
    return None  # read to the end of the connection: not spoken by what the simulator calls back


class CallbackClient:
    """POSTs to the merchants' notify URLs over kept-alive connections: an idle one is reused, else one is opened
    (the app's semaphore bounds how many callbacks are in flight, and so how many connections there are)."""

    def __init__(self) -> None:
        self.idle: dict[tuple[str, str, int], deque[_ClientConnection]] = {}

    async def post(self, url: str, content: bytes, content_type: str) -> tuple[int, bytes]:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        if scheme not in ("http", "https") or not host:
            raise ValueError(f"not an http(s) URL: {url}")
        port = parts.port or (443 if scheme == "https" else 80)
        origin = (scheme, host, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = host if parts.port is None else f"{host}:{port}"
        data = (f"POST {target} HTTP/1.1\r\nhost: {host_header}\r\ncontent-type: {content_type}\r\n"
                f"content-length: {len(content)}\r\n\r\n").encode("latin-1") + content
        connection = await self._connection(origin)
        loop = asyncio.get_running_loop()
        try:
            answer = await asyncio.wait_for(connection.request(data, loop), CALLBACK_TIMEOUT_SECONDS)
        except BaseException:
            self._discard(connection)
            raise
        if connection.is_open:
            self.idle.setdefault(origin, deque()).append(connection)
        return answer

    async def _connection(self, origin: tuple[str, str, int]) -> _ClientConnection:
        idle = self.idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.is_open:
                return connection
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context: Any = ssl.create_default_context() if scheme == "https" else None
        _, connection = await asyncio.wait_for(
            loop.create_connection(_ClientConnection, host, port, ssl=context), CALLBACK_TIMEOUT_SECONDS)
        return connection

    @staticmethod
    def _discard(connection: _ClientConnection) -> None:
        if connection.transport is not None and connection.is_open:
            connection.transport.close()
        connection.is_open = False
