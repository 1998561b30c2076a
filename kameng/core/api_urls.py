"""The URLs of a django-ninja API whose every answer is JSON: ninja's routes, a method no route of a path takes
answered as JSON 405 (ninja says it in plain text), and any other path under the API's prefix as JSON 404 (Django
would send its HTML page). Shared by the Open API v1 (kameng.openapi) and the storefront JSON (kameng.api); each
gives its own error body (`Answer`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import URLPattern, URLResolver, path
from ninja import NinjaAPI

# (request, status, code, message) → the API's error response
Answer = Callable[[HttpRequest, int, str, str], HttpResponse]
UNKNOWN_PATH_NAME = "unknown_path"


def json_api_urls(api: NinjaAPI, *, answer: Answer,
                  not_found_message: str) -> tuple[list[URLPattern | URLResolver], str, str]:
    """What to include at the API's prefix, in place of `api.urls`."""
    patterns, app_name, namespace = api.urls
    checked: list[URLPattern | URLResolver] = [
        URLPattern(pattern.pattern, _method_checked(pattern.callback, answer), pattern.default_args, pattern.name)
        if isinstance(pattern, URLPattern) else pattern for pattern in patterns]

    def unknown_path(request: HttpRequest, rest: str) -> HttpResponse:
        return answer(request, 404, "not_found", not_found_message)

    checked.append(path("<path:rest>", unknown_path, name=UNKNOWN_PATH_NAME))
    return checked, app_name, namespace


def _method_checked(view: Callable[..., HttpResponse], answer: Answer) -> Callable[..., HttpResponse]:
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if not isinstance(response, HttpResponseNotAllowed):
            return response
        allowed = response["Allow"]
        refused = answer(request, 405, "method_not_allowed", f"该接口不支持 {request.method} 方法，只支持：{allowed}")
        refused["Allow"] = allowed
        return refused

    return wrapped
