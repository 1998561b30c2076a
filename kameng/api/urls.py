"""The JSON API (django-ninja). Handlers validate input, call one service and shape the answer."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, ValidationError
from ninja.security import django_auth

from kameng.api.shop import router as shop_router
from kameng.core.errors import ApplicationError

api = NinjaAPI(title="kameng API", version="1", urls_namespace="api", auth=django_auth)
api.add_router("/v1/shop", shop_router)


@api.exception_handler(ApplicationError)
def application_error(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    return api.create_response(request, error.as_dict(), status=error.status_code)


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, error: ValidationError) -> HttpResponse:
    return api.create_response(request, {"code": "invalid_input", "message": "请求参数有误",
                                         "extra": {"errors": error.errors}}, status=422)


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return api.create_response(request, {"code": "not_authenticated", "message": "请先登录"}, status=401)
