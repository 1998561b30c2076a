"""Where the storefront turns an `ApplicationError` into an HTTP answer: one status rule, two ways to show it.

A view either lets the error escape (`handles_application_errors` renders the error page), or catches it to
re-render its own form with the message kept (`rejected`). Both use `status_for`, so a rule violation is a 400,
a missing thing a 404 and a state conflict (sold out, insufficient balance, already paid) a 409 everywhere.

The database out of reach is not an error of the request: `database_unavailable` answers 503 with Retry-After
(a page, or JSON under /api/), for view exceptions (DatabaseUnavailableMiddleware) and for those raised outside a
view, in a middleware (`server_error`, the project's handler500).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.views import defaults

from kameng.core.errors import (
    DATABASE_UNAVAILABLE_CODE,
    DATABASE_UNAVAILABLE_ERRORS,
    DATABASE_UNAVAILABLE_MESSAGE,
    DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS,
    ApplicationError,
)

View = Callable[..., HttpResponse]


def status_for(error: ApplicationError) -> int:
    return error.status_code if 400 <= error.status_code < 500 else 400


def message_for(error: ApplicationError) -> str:
    """The error's message in the active language (service messages are Chinese msgids, see i18n_catalog).

    Its template is translated, then filled in; a value that is itself a catalog text (an order status such as
    「已取消」) is translated too, a number or an amount goes in as it is.
    """
    if not error.params:
        return gettext(error.message)
    params = {name: gettext(value) if isinstance(value, str) else value for name, value in error.params.items()}
    return gettext(error.template) % params


def rejected(request: HttpRequest, template: str, context: dict[str, Any], error: ApplicationError) -> HttpResponse:
    """Re-render a page with its form kept and the error shown above it."""
    return render(request, template, {**context, "error_message": message_for(error), "error_code": error.code},
                  status=status_for(error))


def handles_application_errors(view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except ApplicationError as error:
            return rejected(request, "web/error.html", {}, error)

    return wrapper


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After. The page reads nothing from the database (no user, no balance): it has none."""
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"code": DATABASE_UNAVAILABLE_CODE, "message": DATABASE_UNAVAILABLE_MESSAGE},
                                status=503, json_dumps_params={"ensure_ascii": False})
    else:
        response = render(request, "web/unavailable.html",
                          {"retry_after": DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS}, status=503)
    response["Retry-After"] = str(DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: Django calls it inside the `except` of the exception that escaped a middleware or a view."""
    if isinstance(sys.exc_info()[1], DATABASE_UNAVAILABLE_ERRORS):
        return database_unavailable(request)
    return defaults.server_error(request)
