"""The simulator's HTTP for everyone but the tests: aiohttp.web serving its app (app.py) and an aiohttp session
sending its callbacks.

Why not granian + ASGI + httpx (the first version): in a profile of bench/topup.py the simulator spent most of its
CPU outside the protocol — httpx/httpcore sending the callbacks (request models, the pool's bookkeeping, anyio
streams) and the ASGI bridge's futures for every request. aiohttp's server and client parse HTTP in C on the one
event loop. What talks to it gets keep-alive and pipelined requests answered in order, `Content-Length` bodies (a
chunked request is refused with 411, a body over MAX_BODY_BYTES with 413), `Connection: close` honoured; it is bound
to 127.0.0.1 beside the platform.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
from aiohttp import web

from kameng.simulators.supplier.app import MAX_BODY_BYTES, Reply, SupplierSimulatorApp

CALLBACK_TIMEOUT_SECONDS = 10.0
SHUTDOWN_SECONDS = 1.0  # answers still hanging (the "hang" unknown mode) are not waited for on the way out


def _response(reply: Reply) -> web.Response:
    return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type, charset="utf-8")


def application_of(app: SupplierSimulatorApp) -> web.Application:
    """The aiohttp application answering every path with the simulator app's answers."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            response = _response(Reply(411, b"a Content-Length is needed", "text/plain"))
            response.force_close()
            return response
        return _response(await app.answer(request.method, request.path, await request.read()))

    application = web.Application(client_max_size=MAX_BODY_BYTES)
    application.router.add_route("*", "/{path:.*}", handle)
    return application


async def serve(app: SupplierSimulatorApp, *, host: str, port: int, ready: Callable[[], None] | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Serve the app until `stop` is set (forever without one)."""
    runner = web.AppRunner(application_of(app), access_log=None, handle_signals=False,
                           shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=2048, reuse_address=True).start()
    if ready is not None:
        ready()
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()
        await app.tasks_cancel()


class CallbackClient:
    """POSTs to the merchants' notify URLs through one aiohttp session on kept-alive connections (the app's semaphore
    bounds how many callbacks are in flight, and so how many connections there are)."""

    def __init__(self, *, connections: int) -> None:
        self.connections = connections
        self.session: aiohttp.ClientSession | None = None

    async def post(self, url: str, content: bytes, content_type: str) -> tuple[int, bytes]:
        if self.session is None:
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connections),
                timeout=aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_SECONDS))
        async with self.session.post(url, data=content, headers={"Content-Type": content_type}) as response:
            return response.status, await response.read()

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
