"""The suppliers' top-up callback (`POST /suppliers/callback/<supplier id>/`) answered ahead of Django's middleware.

Why: measured in process (bench/README.md), Django's request handling and the site's middleware took about two thirds
of a callback's CPU — sessions, language, CSP, sub-site host checks, device and affiliate cookies, messages — none
of which a supplier's server-to-server POST uses: it carries no cookie, renders no page, and its only input (the
signed body) is checked by the supplier's connector (kameng.suppliers.callbacks). This wrapper answers exactly that
request (POST, that path) with the same service and the same answers as the view (`kameng.suppliers.views`, which
still serves it wherever the wrapper is not in front: tests, runserver); every other request goes to Django.

What it keeps of Django's handling: `request_started`/`request_finished` (database connections are checked and
closed as for any request), the body read at most `MAX_BODY_BYTES` + 1 (a larger one is answered 413 unread, as the
service does), the headers as `request.headers` names them, a database out of reach answered 503 (the supplier
retries) and any other failure 500 with the error logged on `django.request`. A GET or any other method on the path
goes to Django (405, as before).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.core import signals
from django.db import DatabaseError
from django.http.request import HttpHeaders

from kameng.suppliers.callbacks import MAX_BODY_BYTES, topup_callback_process

logger = logging.getLogger("django.request")

CALLBACK_PATH = re.compile(r"/suppliers/callback/([0-9]{1,18})/")
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def supplier_callbacks_first(app: WsgiApp) -> WsgiApp:
    """`app` with the suppliers' callbacks answered before it (kameng/wsgi.py)."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST" and not environ.get("SCRIPT_NAME"):
            match = CALLBACK_PATH.fullmatch(environ.get("PATH_INFO") or "")
            if match is not None:
                return _callback(environ, start_response, int(match[1]))
        return app(environ, start_response)

    return application


def _callback(environ: dict[str, Any], start_response: Callable[..., Any], supplier_id: int) -> list[bytes]:
    signals.request_started.send(sender=supplier_callbacks_first, environ=environ)
    try:
        status, body = _answer(environ, supplier_id)
    finally:
        signals.request_finished.send(sender=supplier_callbacks_first)
    data = body.encode("utf-8")
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data))),
                            ("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")])
    return [data]


STATUS_TEXT = {200: "200 OK", 400: "400 Bad Request", 404: "404 Not Found", 413: "413 Payload Too Large",
               500: "500 Internal Server Error", 503: "503 Service Unavailable"}


def _answer(environ: dict[str, Any], supplier_id: int) -> tuple[str, str]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        return STATUS_TEXT[413], "payload too large"
    try:
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        reply = topup_callback_process(supplier_id=supplier_id, body=body, headers=dict(HttpHeaders(environ)))
    except DatabaseError as error:
        logger.warning("supplier callback %s: database unavailable: %s", supplier_id, error)
        return STATUS_TEXT[503], "service unavailable"
    except Exception:
        logger.exception("supplier callback %s failed", supplier_id)
        return STATUS_TEXT[500], "server error"
    return STATUS_TEXT.get(reply.status, f"{reply.status} Status"), reply.body
