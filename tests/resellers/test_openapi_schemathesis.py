"""Schemathesis against the served /openapi/v1/openapi.json: generated requests (valid and invalid bodies, path and
query values) to every route, each signed with a valid key the way a client would sign it, and never a 5xx; every
4xx is `{"code", "message"}` with a Chinese message (no pydantic English).

The signing happens in a small WSGI wrapper around the real application: it reads the raw body schemathesis
serialised, signs method, path, query and body with the test key, and adds the four headers — so the generated
inputs reach validation and the handlers rather than stopping at 401. Bounded: a few examples per operation.
"""

from __future__ import annotations

import io
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from django.utils.encoding import escape_uri_path, iri_to_uri
from hypothesis import HealthCheck, given, settings

from kameng.core.openapi_signing import openapi_signed_headers
from tests.factories import SkuFactory, stock_sku
from tests.resellers.openapi_support import KeyHolder, reseller_with_key

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = 12
CJK = re.compile(r"[\u4e00-\u9fff]")
PYDANTIC_ENGLISH = re.compile(r"Input should|String should|Field required|Value error|valid integer")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SigningApp:
    """Signs each request as a client holding `holder`'s key would, then hands it to the application."""

    def __init__(self, app: WsgiApp, holder: KeyHolder) -> None:
        self.app = app
        self.holder = holder

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        if path.startswith("/openapi/v1/") and not path.endswith(("/openapi.json", "/docs")):
            # What the server signs: Django's request.get_full_path() (the path as UTF-8, escaped as Django does).
            decoded = path.encode("latin-1").decode("utf-8", errors="replace")
            target = escape_uri_path(decoded) + (f"?{iri_to_uri(query)}" if query else "")
            signed = openapi_signed_headers(key_id=self.holder.key.key_id, secret=self.holder.secret,
                                            method=environ["REQUEST_METHOD"], path_with_query=target, body=body,
                                            timestamp=int(time.time()), nonce=secrets.token_hex(16))
            for name, value in signed.items():
                environ["HTTP_" + name.upper().replace("-", "_")] = value
        return self.app(environ, start_response)


@pytest.fixture
def connection_kept() -> Iterator[None]:
    """As Django's test client does: a request starting or finishing must not close the test's database connection (on
    PostgreSQL that would end the transaction the test runs in)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def _operations(app: SigningApp) -> list[Any]:
    loaded = schemathesis.openapi.from_wsgi("/openapi/v1/openapi.json", app)
    return [result.ok() for result in loaded.get_all_operations()]


def _unreadable_refusal(response: Any) -> bool:
    """A 4xx that is not `{"code", "message"}` with a Chinese message, or that lets pydantic's English through."""
    try:
        body = response.json()
    except ValueError:
        return True
    return (not isinstance(body, dict) or set(body) != {"code", "message"} or not body["code"]
            or not CJK.search(str(body["message"])) or bool(PYDANTIC_ENGLISH.search(str(body["message"]))))


def _exercise(operation: Any, generation_mode: Any, checks: list[Any], seen: dict[str, set[int]], *,
              unsigned: list[str], unreadable: list[str]) -> None:
    label = f"{operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy(generation_mode=generation_mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        response = case.call()
        seen.setdefault(label, set()).add(response.status_code)
        if response.status_code == 401:
            unsigned.append(f"{label}: {case.formatted_path} {case.query} {response.text[:200]}")
        if 400 <= response.status_code < 500 and _unreadable_refusal(response):
            unreadable.append(f"{label} {response.status_code}: {response.text[:200]}")
        case.validate_response(response, checks=checks)

    run()


@pytest.mark.django_db
@pytest.mark.usefixtures("connection_kept")
@pytest.mark.parametrize("mode", ["positive", "negative"])
@override_settings(KAMENG_OPENAPI_RATE_PER_MINUTE=0)
def test_the_open_api_never_answers_5xx_to_generated_requests(mode: str) -> None:
    holder = reseller_with_key(funds=Decimal("100000.00"))
    for _ in range(2):
        stock_sku(SkuFactory.create(price=Decimal("1.00")), 30)
    operations = _operations(SigningApp(get_wsgi_application(), holder))
    generation_mode = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE
    checks = [not_a_server_error] + ([status_code_conformance, content_type_conformance,
                                      response_schema_conformance] if mode == "positive" else [])
    seen: dict[str, set[int]] = {}
    unsigned: list[str] = []
    unreadable: list[str] = []

    for operation in operations:
        _exercise(operation, generation_mode, checks, seen, unsigned=unsigned, unreadable=unreadable)

    assert sorted(seen) == sorted(f"{op.method.upper()} {op.path}" for op in operations)
    assert len(seen) == 6
    assert all(status < 500 for statuses in seen.values() for status in statuses), seen
    assert unsigned == []  # every case was signed as the server verifies, and reached its handler
    assert unreadable == []  # every refusal: a code for programs and a Chinese message for people
