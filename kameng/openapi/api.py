"""The Open API v1 (django-ninja, mounted at /openapi/v1/): resellers' signed machine-to-machine API.

Its own NinjaAPI (namespace "openapi"), apart from the storefront's JSON API: another authentication (the signed
request of kameng.openapi.auth on every route), its own OpenAPI document (/openapi/v1/openapi.json) and docs page
(/openapi/v1/docs, ninja's bundled Swagger UI). Every answer that is not a success is `{"code", "message"}` with
its status: the input did not validate 422 (the message names the field), a body that is not JSON 400, the
signature 401, the reseller or its address 403, an unknown SKU or order 404, a conflict 409 (sold out, the same
request_no with another body), an insufficient balance 402, the rate limit 429 with Retry-After, the database out
of reach 503 with Retry-After, a bug 500 (logged). A 422's message is Chinese, naming the field and what is wrong
with it (kameng.core.input_errors; never pydantic's English), under the one code `invalid_input`. A path under
/openapi/v1/ that is no route is a JSON 404 `not_found` and a method a route does not take a JSON 405
`method_not_allowed` with Allow (`api_urls`, kameng.core.api_urls), where Django and ninja would answer HTML or
plain text.

Django logs every 4xx answer as a warning (django.request). A sold-out (409) or an insufficient balance (402) is
the API's ordinary answer to a well-formed request — a flash sale's losers are hundreds of them a second — so
those two are not logged at all; the other 4xx (a bad signature, input that does not validate, a refused address,
the rate limit…) stay warnings, where a client's mistakes and an attack show.
"""

from __future__ import annotations

import logging

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError

from kameng.core.api_urls import json_api_urls
from kameng.core.errors import (
    DATABASE_UNAVAILABLE_CODE,
    DATABASE_UNAVAILABLE_MESSAGE,
    DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS,
    ApplicationError,
)
from kameng.core.input_errors import validation_message
from kameng.openapi.auth import SignedRequest
from kameng.openapi.v1 import FIELD_RULES, router

logger = logging.getLogger(__name__)

DESCRIPTION = """代理商开放接口 v1（kameng Open API）。

每个请求带四个请求头：`X-Kameng-Key`（密钥 ID）、`X-Kameng-Timestamp`（Unix 秒）、`X-Kameng-Nonce`（16–64 个字符，
每个请求不同）、`X-Kameng-Signature` = 小写十六进制 HMAC-SHA256(密钥, 方法 + "\\n" + 路径和查询串 + "\\n" + 时间戳 +
"\\n" + 随机串 + "\\n" + 请求体的小写十六进制 SHA-256)（空请求体取空串的 SHA-256）。时间相差超过 300 秒、随机串重复、
密钥不存在或已吊销、签名错误：401。错误一律为 JSON `{"code", "message"}`。示例客户端：`examples/openapi_client.py`。
"""

api = NinjaAPI(title="kameng Open API", version="1", urls_namespace="openapi", auth=SignedRequest(),
               description=DESCRIPTION, docs_url="/docs", openapi_url="/openapi.json")
api.add_router("", router)

# Business answers to a well-formed request: not logged by django.request (see the module docstring).
QUIET_STATUSES = frozenset({402, 409})

# Raised by ninja itself: a body it cannot parse as JSON (400).
HTTP_ERRORS = {400: ("invalid_json", "请求体不是有效的 JSON：请发送 Content-Type: application/json 的 JSON 对象")}
NOT_FOUND_MESSAGE = "接口不存在：请检查请求路径（见 /openapi/v1/docs）"


def error_response(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    return api.create_response(request, {"code": code, "message": message}, status=status)


@api.exception_handler(ApplicationError)
def application_error(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    status = error.status_code
    if error.code == "insufficient_balance":
        status = 402
    response = error_response(request, status, error.code, error.message)
    if "retry_after" in error.extra:
        response["Retry-After"] = str(error.extra["retry_after"])
    if status in QUIET_STATUSES:
        response._has_been_logged = True  # type: ignore[attr-defined]  # django.utils.log.log_response's own mark
    return response


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, error: ValidationError) -> HttpResponse:
    return error_response(request, 422, "invalid_input",
                          validation_message(error.errors, body=request.body, rules=FIELD_RULES))


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return error_response(request, 401, "signature_missing", "请求未签名：请带上 X-Kameng-Key 等签名请求头")


@api.exception_handler(AuthorizationError)
def authorization_error(request: HttpRequest, error: AuthorizationError) -> HttpResponse:
    return error_response(request, 403, "forbidden", "没有权限")


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    code, message = HTTP_ERRORS.get(error.status_code, ("http_error", f"请求无法处理（HTTP {error.status_code}）"))
    return error_response(request, error.status_code, code, message)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, error: Http404) -> HttpResponse:
    return error_response(request, 404, "not_found", "资源不存在")


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def database_unavailable(request: HttpRequest, error: Exception) -> HttpResponse:
    logger.warning("database unavailable in %s %s: %s", request.method, request.path, error)
    response = error_response(request, 503, DATABASE_UNAVAILABLE_CODE, DATABASE_UNAVAILABLE_MESSAGE)
    response["Retry-After"] = str(DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response


@api.exception_handler(Exception)
def server_error(request: HttpRequest, error: Exception) -> HttpResponse:
    logger.error("unhandled exception in %s %s", request.method, request.path, exc_info=error)
    got_request_exception.send(sender=None, request=request)
    return error_response(request, 500, "server_error", "服务器内部错误，请稍后重试")


def api_urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    """What kameng.urls includes at /openapi/v1/ (kameng.core.api_urls: JSON 404 and 405 too)."""
    return json_api_urls(api, answer=error_response, not_found_message=NOT_FOUND_MESSAGE)
