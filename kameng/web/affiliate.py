"""Invitation links: `?aff=<invite code>` on any storefront address leaves a signed cookie for
KAMENG_AFF_COOKIE_DAYS (kameng.resellers.attribution reads it when the visitor registers).

Nothing happens on a request without `aff=` in its query string. A well-formed code is written as given — a later
link replaces an earlier one, the last invitation followed counts — and whether it belongs to anyone is looked up
only at registration, so a link costs no query.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from kameng.resellers.attribution import (
    AFF_COOKIE,
    AFF_COOKIE_SALT,
    AFF_PARAMETER,
    aff_cookie_max_age,
    has_aff_parameter,
)
from kameng.resellers.referrals import invite_code_normalise


class AffiliateMiddleware:
    """Writes the invitation cookie on the response of a request that carries a well-formed `?aff=` code."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if has_aff_parameter(request):
            code = invite_code_normalise(request.GET.get(AFF_PARAMETER, ""))
            if code is not None:
                response.set_signed_cookie(AFF_COOKIE, code, salt=AFF_COOKIE_SALT, max_age=aff_cookie_max_age(),
                                           httponly=True, samesite="Lax", secure=settings.SESSION_COOKIE_SECURE)
        return response
