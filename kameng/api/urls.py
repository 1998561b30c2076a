"""The JSON API (django-ninja). Handlers validate input, call one service and shape the answer.

Every answer that is not a success has one body shape, ApplicationError's: `{"code", "message", "extra"?}` — a
rule said no, the input did not validate (422, the message naming the wrong fields in Chinese, the field errors in
`extra.errors`), no session (401), ninja's own refusals (a body that is not JSON 400, CSRF 403), a path under /api/
that is no route (404 `not_found`) or a method its route does not take (405 `method_not_allowed`, `api_urls`), the
database out of reach (503 with Retry-After), and any unexpected exception (500, logged with its traceback).
"""

from __future__ import annotations

import logging

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError
from ninja.security import django_auth

from kameng.api.account import router as account_router
from kameng.api.phone_login import router as phone_login_router
from kameng.api.shop import router as shop_router
from kameng.core.api_urls import json_api_urls
from kameng.core.errors import (
    DATABASE_UNAVAILABLE_CODE,
    DATABASE_UNAVAILABLE_MESSAGE,
    DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS,
    ApplicationError,
)
from kameng.core.input_errors import error_message, validation_message

logger = logging.getLogger(__name__)

api = NinjaAPI(title="kameng API", version="1", urls_namespace="api", auth=django_auth)
api.add_router("/v1/shop", shop_router)
api.add_router("/v1/account", account_router)
api.add_router("/v1/account", phone_login_router)  # logging in by phone: no session needed

# ninja raises HttpError itself only for a body it cannot parse (400) and a failed CSRF check (403, session auth).
HTTP_ERRORS = {
    400: ("invalid_body", "请求体无法解析：需要 JSON（Content-Type: application/json）"),
    403: ("csrf_failed", "CSRF 校验失败：使用登录会话时请带上 X-CSRFToken 请求头"),
    429: ("throttled", "请求过于频繁，请稍后再试"),
}


def _error(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    return api.create_response(request, {"code": code, "message": message}, status=status)


@api.exception_handler(ApplicationError)
def application_error(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    response = api.create_response(request, error.as_dict(), status=error.status_code)
    if "retry_after" in error.extra:  # a 429 or a 503 says when to come back
        response["Retry-After"] = str(error.extra["retry_after"])
    return response


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, error: ValidationError) -> HttpResponse:
    """422: the message names the first wrong fields in Chinese; `extra.errors` keeps each error's type, loc and
    ctx for programs, its msg in Chinese too (kameng.core.input_errors)."""
    errors = [{**item, "msg": error_message(item)} for item in error.errors]
    return api.create_response(request, {"code": "invalid_input",
                                         "message": validation_message(error.errors, body=request.body),
                                         "extra": {"errors": errors}}, status=422)


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return _error(request, 401, "not_authenticated", "请先登录")


@api.exception_handler(AuthorizationError)
def authorization_error(request: HttpRequest, error: AuthorizationError) -> HttpResponse:
    return _error(request, 403, "forbidden", "没有权限")


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    code, message = HTTP_ERRORS.get(error.status_code, ("http_error", error.message))
    return _error(request, error.status_code, code, message)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, error: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", "资源不存在")


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def database_unavailable(request: HttpRequest, error: Exception) -> HttpResponse:
    """The database dropped or refused the connection: the client may retry in a moment (a checkout with the same
    request_id, which answers the order if it was written after all)."""
    logger.warning("database unavailable in %s %s: %s", request.method, request.path, error)
    response = _error(request, 503, DATABASE_UNAVAILABLE_CODE, DATABASE_UNAVAILABLE_MESSAGE)
    response["Retry-After"] = str(DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response


@api.exception_handler(Exception)
def server_error(request: HttpRequest, error: Exception) -> HttpResponse:
    """A bug, or a backend down: JSON for the client, the traceback for us. Django's own handler would answer with
    its HTML error page; the signal still goes out (error trackers and the test client listen to it)."""
    logger.error("unhandled exception in %s %s", request.method, request.path, exc_info=error)
    got_request_exception.send(sender=None, request=request)
    return _error(request, 500, "server_error", "服务器内部错误，请稍后重试")


def api_urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    """What kameng.urls includes at /api/ (kameng.core.api_urls: JSON 404 and 405 too)."""
    return json_api_urls(api, answer=_error, not_found_message="接口不存在：请检查请求路径（见 /api/docs）")
