"""The suppliers' callbacks answered ahead of Django's middleware (kameng.suppliers.callback_wsgi, in front of
kameng.wsgi): the same answers as the view, the same one-statement prompt, connections handled as for any request,
and every other request left to Django."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.db import DatabaseError, close_old_connections
from pytest_django.fixtures import Settings

from kameng.suppliers import callback_wsgi, dispatch
from kameng.suppliers.callback_wsgi import supplier_callbacks_first
from kameng.suppliers.models import AttemptStatus, TopupAttempt
from tests.suppliers.test_topup_batching import _prompting
from tests.suppliers.topup_support import Upstreams, upstreams

__all__ = ["upstreams"]

pytestmark = pytest.mark.django_db


@pytest.fixture
def signals_seen() -> Iterator[list[str]]:
    """The request signals sent, with Django's connection closing held off (it would close the test's connection)."""
    seen: list[str] = []

    def started(**kwargs: Any) -> None:
        seen.append("started")

    def finished(**kwargs: Any) -> None:
        seen.append("finished")

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    request_started.connect(started)
    request_finished.connect(finished)
    yield seen
    request_started.disconnect(started)
    request_finished.disconnect(finished)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _call(app: Any, path: str, body: bytes, method: str = "POST") -> tuple[str, dict[str, str], bytes]:
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer.update(status=status, headers=dict(headers))

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1", "REMOTE_ADDR": "10.0.0.9",
               "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
               "wsgi.url_scheme": "http", "HTTP_X_UPSTREAM_TRACE": "t-1"}
    content = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], content


def _django(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("299 Django", [])
    return [b"django"]


def test_a_callback_is_answered_ahead_of_django_with_one_statement(
        upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch, settings: Settings, signals_seen: list[str],
        django_assert_num_queries: Any) -> None:
    _, attempt, upstream = _prompting(upstreams, monkeypatch)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app = supplier_callbacks_first(_django)
    path = f"/suppliers/callback/{attempt.supplier_id}/"
    body = upstream.callback_body(attempt.customer_order_no)
    heard: list[dict[str, str]] = []
    verify = upstream.callback_verify
    def hearing(*, body: bytes, headers: dict[str, str]) -> Any:
        heard.append(headers)
        return verify(body=body, headers=headers)

    monkeypatch.setattr(upstream, "callback_verify", hearing)

    with django_assert_num_queries(2):  # the supplier's row (not held in tests), the conditional UPDATE
        status, headers, content = _call(app, path, body)

    assert (status, content) == ("200 OK", b"success")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert signals_seen == ["started", "finished"]
    assert heard[0]["X-Upstream-Trace"] == "t-1"  # the headers as request.headers names them
    assert dispatch.attempts_due() == [attempt.pk]
    assert TopupAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.PROCESSING  # not taken on its word


def test_refusals_are_the_views_answers_and_other_requests_go_to_django(
        upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch, settings: Settings, signals_seen: list[str]) -> None:
    _, attempt, upstream = _prompting(upstreams, monkeypatch)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app = supplier_callbacks_first(_django)
    path = f"/suppliers/callback/{attempt.supplier_id}/"
    forged = json.dumps({**json.loads(upstream.callback_body(attempt.customer_order_no)), "sign": "0"}).encode()

    assert _call(app, path, forged)[::2] == ("400 Bad Request", b"rejected")
    assert _call(app, f"/suppliers/callback/{attempt.supplier_id + 99}/", forged)[::2] == (
        "400 Bad Request", b"rejected")
    assert _call(app, path, upstream.callback_body("K-nobody"))[::2] == ("404 Not Found", b"unknown order")
    assert _call(app, path, b"x" * (64 * 1024 + 1))[::2] == ("413 Payload Too Large", b"payload too large")
    assert _call(app, path, b"", method="GET")[::2] == ("299 Django", b"django")
    assert _call(app, "/suppliers/callback/x/", b"{}")[::2] == ("299 Django", b"django")
    assert _call(app, "/orders/", b"{}")[::2] == ("299 Django", b"django")
    assert dispatch.attempts_due() == []


def test_a_database_out_of_reach_is_503_so_the_supplier_retries(
        upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch, signals_seen: list[str]) -> None:
    def unreachable(**kwargs: Any) -> None:
        raise DatabaseError("connection refused")

    monkeypatch.setattr(callback_wsgi, "topup_callback_process", unreachable)
    status, _, content = _call(supplier_callbacks_first(_django), "/suppliers/callback/1/", b"{}")
    assert (status, content) == ("503 Service Unavailable", b"service unavailable")
    assert signals_seen == ["started", "finished"]


def test_the_projects_wsgi_application_has_the_callbacks_in_front() -> None:
    from kameng import wsgi

    assert wsgi.application.__qualname__ == "supplier_callbacks_first.<locals>.application"
