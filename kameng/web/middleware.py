"""The project's own middleware: the storefront's language, lazy messages, the Content-Security-Policy by path, form
bodies in a charset Django cannot parse, the database out of reach (503), and the Open API v1's short way through.

The storefront's language is Simplified Chinese unless the visitor picked another one with the switcher.
Django's LocaleMiddleware also follows the browser's Accept-Language, which would show this Chinese storefront in
English to anyone with an English browser or OS (and to headless test browsers). Here only an explicit choice
counts: the language cookie written by `set_language` (/i18n/setlang/).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from csp.constants import HEADER as CSP_HEADER
from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.urls import Resolver404, get_resolver
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.functional import SimpleLazyObject, empty

from kameng.core.errors import DATABASE_UNAVAILABLE_ERRORS, ApplicationError
from kameng.web.errors import database_unavailable, rejected

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
ADMIN_PREFIX = "/admin/"
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# The Open API v1 answers data too; its docs page (Swagger UI from ninja's own static files) gets the site's policy.
OPENAPI_PREFIX = "/openapi/v1/"
OPENAPI_DOCS_PATH = "/openapi/v1/docs"
PERMISSIONS_POLICY_HEADER = "Permissions-Policy"


def chosen_language(request: HttpRequest) -> str:
    choice = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    if choice:
        try:
            return translation.get_supported_language_variant(choice)
        except LookupError:
            pass
    return settings.LANGUAGE_CODE


class ChosenLanguageMiddleware:
    """A drop-in replacement for `django.middleware.locale.LocaleMiddleware` (no i18n URL prefixes are used)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        translation.activate(chosen_language(request))
        request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        patch_vary_headers(response, ("Cookie",))
        response.headers.setdefault("Content-Language", request.LANGUAGE_CODE)
        return response


class LazyMessageMiddleware(MessageMiddleware):
    """Django's MessageMiddleware, with the message storage built only when something reads or adds a message.

    Building it (a cookie signer and a session storage) cost ~70 µs of every request, and most requests — every
    API call, most pages — never touch messages. Stored messages are left as they are until a request uses them,
    which is what Django's storage does with messages nobody read.
    """

    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(lambda: default_storage(request))  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response
        return super().process_response(request, response)


class DatabaseUnavailableMiddleware:
    """A view whose database dropped or refused the connection answers 503 with Retry-After, not 500 (a restart or
    a failover is over in seconds; the buyer is told to retry). Logged as a warning, without the traceback."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_UNAVAILABLE_ERRORS):
            return None
        logger.warning("database unavailable in %s %s: %s", request.method, request.path, exception)
        return database_unavailable(request)


FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
UNSUPPORTED_FORM_CHARSET = ApplicationError("表单编码不受支持：请以 UTF-8 编码提交", code="invalid_charset")


def form_charset_refused(request: HttpRequest) -> bool:
    return request.content_type == FORM_CONTENT_TYPE and (request.encoding or "utf-8").lower() != "utf-8"


class FormCharsetMiddleware:
    """A form post that declares a charset other than UTF-8 (`charset=gbk`) is refused with 400 and a message.

    Django refuses to parse such a body (BadRequest) wherever it is first read; under DEBUG its error page then
    reads the body again to show it, fails the same way and answers 500. Refused here, before anything reads it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if form_charset_refused(request):
            if request.path.startswith(("/api/", OPENAPI_PREFIX)):
                return JsonResponse(UNSUPPORTED_FORM_CHARSET.as_dict(), status=400,
                                    json_dumps_params={"ensure_ascii": False})
            return rejected(request, "web/error.html", {}, UNSUPPORTED_FORM_CHARSET)
        return self.get_response(request)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware (settings.CONTENT_SECURITY_POLICY), with two differences by path, and the
    Permissions-Policy header (settings.KAMENG_PERMISSIONS_POLICY) on every answer.

    The admin gets `KAMENG_ADMIN_CSP_REPLACE` (what django-unfold needs, see the settings). The JSON API gets a
    fixed policy that allows nothing: its answers are data, never a document with scripts, and building the
    policy for every checkout would cost time on the busiest path.
    """

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        # Permissions-Policy rides along here (one header set) rather than in a middleware of its own.
        response.headers.setdefault(PERMISSIONS_POLICY_HEADER, settings.KAMENG_PERMISSIONS_POLICY)
        if request.path_info.startswith(API_PREFIX) or (
                request.path_info.startswith(OPENAPI_PREFIX) and request.path_info != OPENAPI_DOCS_PATH):
            response.headers.setdefault(CSP_HEADER, API_POLICY)
            return response
        return super().process_response(request, response)

    def get_policy_parts(self, request: HttpRequest, response: HttpResponseBase,
                         report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if request.path_info.startswith(ADMIN_PREFIX) and parts.replace is None:
            parts.replace = settings.KAMENG_ADMIN_CSP_REPLACE
        return parts


class OpenApiMiddleware:
    """The Open API v1's requests go the short way: from here straight to the view, past the middleware that only
    a browser needs.

    Every Open API call is signed (kameng.openapi.auth) and carries no session, CSRF token, message, device or
    invitation cookie: the sessions, CSRF, authentication, messages, device-id, staff, htmx, affiliate and static
    files middleware would each cost CPU on every call (~0.3 ms together, the busiest reseller path) and do
    nothing. What they do that an answer needs is done here, so an answer is the same as before, byte for byte in
    its headers: the language (the visitor's chosen one, as ChosenLanguageMiddleware picks it; `Content-Language`,
    `Vary: Cookie`), the form charset check (400), the API's fixed Content-Security-Policy with Permissions-Policy
    (as ContentSecurityPolicyMiddleware sends them under /openapi/v1/), X-Frame-Options and Content-Length.

    Placed right after SecurityMiddleware, so the Host check of SubSiteMiddleware, the HTTPS redirect and the
    security headers still apply. The docs page (Swagger UI: a document, with the site's policy), a path the API
    does not route and a request SubSiteMiddleware sent elsewhere (`request.urlconf`) take the whole chain. The
    views are django-ninja's, which answer every exception themselves (kameng.openapi.api: a bug is a logged 500,
    the database out of reach a 503); `request.user` is the anonymous user (the caller is `request.auth`).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if not path.startswith(OPENAPI_PREFIX) or path == OPENAPI_DOCS_PATH or hasattr(request, "urlconf"):
            return self.get_response(request)
        try:
            match = get_resolver().resolve(path)
        except Resolver404:
            return self.get_response(request)
        translation.activate(chosen_language(request))
        request.LANGUAGE_CODE = translation.get_language()
        if form_charset_refused(request):
            response: HttpResponse = JsonResponse(UNSUPPORTED_FORM_CHARSET.as_dict(), status=400,
                                                  json_dumps_params={"ensure_ascii": False})
        else:
            request.user = AnonymousUser()
            request.resolver_match = match
            response = match.func(request, *match.args, **match.kwargs)
        headers = response.headers
        patch_vary_headers(response, ("Cookie",))
        headers.setdefault("Content-Language", request.LANGUAGE_CODE)
        headers.setdefault(PERMISSIONS_POLICY_HEADER, settings.KAMENG_PERMISSIONS_POLICY)
        headers.setdefault(CSP_HEADER, API_POLICY)
        headers.setdefault("X-Frame-Options", getattr(settings, "X_FRAME_OPTIONS", "DENY").upper())
        if not response.streaming and "Content-Length" not in headers:
            headers["Content-Length"] = str(len(response.content))
        return response
