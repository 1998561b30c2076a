"""Where the storefront turns an `ApplicationError` into an HTTP answer: one status rule, two ways to show it.

A view either lets the error escape (`handles_application_errors` renders the error page), or catches it to
re-render its own form with the message kept (`rejected`). Both use `status_for`, so a rule violation is a 400,
a missing thing a 404 and a state conflict (sold out, insufficient balance, already paid) a 409 everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext

from kameng.core.errors import ApplicationError

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
