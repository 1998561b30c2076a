"""A lean HTTP/1.1 client for the top-up dispatcher's event loop: one POST at a time per kept-alive connection.

Why not httpx here: in a profile of bench/topup.py (py-spy --gil, the worker process) httpx/httpcore/anyio took
about 60 % of the worker's CPU per order — request and response models, the pool's expiry checks on every
connection, cancel scopes, header validation — for what is one small JSON POST and its small answer. This client
writes the request in one `write` and parses the answer from the bytes received (Content-Length, chunked, or read
to the close), on asyncio's transports.

What it keeps of the contract the connector relies on: a connect or read past its timeout, a connection dropped, a
reply that does not parse — all raise `HttpError` (the connector's UNKNOWN: query, never resubmit). It never retries
a request itself (a request written to a kept-alive connection that then fails may have been received). A
connection is reused only while open and answered in full; it is dropped after `IDLE_SECONDS` unused (before the
server's own keep-alive timeout). TLS with the default context (certificates and host name checked).

Used only where httpx would add nothing: without proxy settings in the environment (httpx honours HTTP(S)_PROXY;
then the connector keeps httpx), for http and https URLs.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

IDLE_SECONDS = 20.0
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


class HttpError(Exception):
    """The call's outcome is unknown: no answer, or one that cannot be read."""


class HttpTimeoutError(HttpError):
    pass


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes


def proxies_configured() -> bool:
    return any(os.environ.get(name) for name in PROXY_VARIABLES)


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future[HttpResponse] | None = None
        self.is_open = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport, self.is_open = transport, True

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_open = False
        if self.answer is not None and not self.answer.done():
            parsed = _parse(self.buffer, at_end=True)
            if parsed is not None:
                self.answer.set_result(parsed[0])
            else:
                self.answer.set_exception(HttpError("connection closed before the whole answer"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.answer is None or self.answer.done():
            return
        try:
            parsed = _parse(self.buffer, at_end=False)
        except HttpError as error:
            self.answer.set_exception(error)
            self.close()
            return
        if parsed is None:
            return
        response, keep_alive = parsed
        if not keep_alive:
            self.close()
        self.answer.set_result(response)

    def close(self) -> None:
        self.is_open = False
        if self.transport is not None:
            self.transport.close()

    def send(self, data: bytes) -> asyncio.Future[HttpResponse]:
        assert self.transport is not None
        self.buffer.clear()
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.answer


def _parse(buffer: bytearray, *, at_end: bool) -> tuple[HttpResponse, bool] | None:  # noqa: PLR0911 - one per case
    """The whole response at the start of `buffer` and whether the connection stays open; None while incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEAD_BYTES:
            raise HttpError("response head too large")
        return None
    try:
        status_line, *lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        version, status_text = status_line.split(" ", 2)[:2]
        status = int(status_text)
    except ValueError as error:
        raise HttpError("unreadable status line") from error
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    start = end + 4
    if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
        del buffer[:start]
        return _parse(buffer, at_end=at_end)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _chunked(buffer, start, status, keep_alive)
    if "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError as error:
            raise HttpError("unreadable Content-Length") from error
        if not 0 <= length <= MAX_BODY_BYTES:
            raise HttpError("response body too large")
        if len(buffer) < start + length:
            return None
        return HttpResponse(status, bytes(buffer[start:start + length])), keep_alive
    if status in (204, 304):
        return HttpResponse(status, b""), keep_alive
    # No length: the body runs to the end of the connection.
    return (HttpResponse(status, bytes(buffer[start:])), False) if at_end else None


def _chunked(buffer: bytearray, position: int, status: int, keep_alive: bool) -> tuple[HttpResponse, bool] | None:
    body = bytearray()
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        try:
            size = int(bytes(buffer[position:line_end]).split(b";", 1)[0], 16)
        except ValueError as error:
            raise HttpError("unreadable chunk size") from error
        if size == 0:  # the last chunk, then trailer lines (if any) and an empty line
            if buffer[line_end + 2:line_end + 4] != b"\r\n" and buffer.find(b"\r\n\r\n", line_end) < 0:
                return None
            if len(buffer) < line_end + 4:
                return None
            return HttpResponse(status, bytes(body)), keep_alive
        if len(body) + size > MAX_BODY_BYTES:
            raise HttpError("response body too large")
        if len(buffer) < line_end + 2 + size + 2:
            return None
        body += buffer[line_end + 2:line_end + 2 + size]
        position = line_end + 2 + size + 2


class Http11Client:
    """Kept-alive connections per origin for one event loop (the dispatcher's): `post` many at once."""

    def __init__(self, *, timeout: float, connect_timeout: float) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.idle: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None

    async def post(self, url: str, content: bytes, *, content_type: str) -> HttpResponse:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        if scheme not in ("http", "https") or not host:
            raise HttpError(f"not an http(s) URL: {url}")
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = host if parts.port is None else f"{host}:{port}"
        data = (f"POST {target} HTTP/1.1\r\nHost: {host_header}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(content)}\r\nAccept: application/json\r\nUser-Agent: kameng\r\n\r\n"
                ).encode("latin-1") + content
        origin = (scheme, host, port)
        connection = await self._connection(origin)
        try:
            response = await asyncio.wait_for(connection.send(data), self.timeout)
        except TimeoutError as error:
            connection.close()
            raise HttpTimeoutError("no answer in time") from error
        except BaseException:
            connection.close()
            raise
        if connection.is_open:
            connection.idle_since = time.monotonic()
            self.idle.setdefault(origin, deque()).append(connection)
        return response

    async def _connection(self, origin: tuple[str, str, int]) -> _Connection:
        idle = self.idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be timed out by the server
            if connection.is_open and now - connection.idle_since < IDLE_SECONDS:
                return connection
            connection.close()
        scheme, host, port = origin
        if scheme == "https" and self._tls is None:
            self._tls = ssl.create_default_context()
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(_Connection, host, port, ssl=self._tls if scheme == "https" else None),
                self.connect_timeout)
        except TimeoutError as error:
            raise HttpTimeoutError("connect timed out") from error
        except OSError as error:
            raise HttpError(f"connect failed: {type(error).__name__}") from error
        return connection

    async def aclose(self) -> None:
        for connections in self.idle.values():
            for connection in connections:
                connection.close()
        self.idle.clear()
