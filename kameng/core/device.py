"""The client's device id: what per-device limits count (SMS codes now; risk control's velocity rules later).

An app or API client names its device in the `X-Device-Id` header (8–64 letters, digits, `-` or `_`, chosen once
per installation). A browser gets a long-lived signed cookie, set the first time a page asks for the id
(`DeviceIdMiddleware` writes it on that response only, so cached pages and API answers carry no Set-Cookie).

Neither proves anything: a client that drops its cookie or changes its header is a new device. The id is one more
name to count under, beside the phone and the address, not an identity. The cookie is signed so that a client
cannot pick another device's id and use up that device's budget.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

DEVICE_HEADER = "HTTP_X_DEVICE_ID"
DEVICE_COOKIE = "kameng_device"
DEVICE_COOKIE_SALT = "kameng.core.device"
DEVICE_COOKIE_MAX_AGE = 2 * 365 * 24 * 3600
DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_NEW_DEVICE_ATTRIBUTE = "_kameng_new_device_id"


def device_id(request: HttpRequest) -> str:
    """The device's id: `X-Device-Id` when it is well formed, else the browser's signed cookie, else a new id that
    the response will set as the cookie (when DeviceIdMiddleware is installed)."""
    header = str(request.META.get(DEVICE_HEADER, "")).strip()
    if DEVICE_ID_RE.match(header):
        return f"h:{header}"
    cookie = request.get_signed_cookie(DEVICE_COOKIE, default=None, salt=DEVICE_COOKIE_SALT,
                                       max_age=DEVICE_COOKIE_MAX_AGE)
    if cookie and DEVICE_ID_RE.match(cookie):
        return f"c:{cookie}"
    new = getattr(request, _NEW_DEVICE_ATTRIBUTE, None)
    if new is None:
        new = secrets.token_urlsafe(18)
        setattr(request, _NEW_DEVICE_ATTRIBUTE, new)
    return f"c:{new}"


class DeviceIdMiddleware:
    """Sets the device cookie on the response of a request that asked for an id it did not have."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        new = getattr(request, _NEW_DEVICE_ATTRIBUTE, None)
        if new is not None:
            response.set_signed_cookie(DEVICE_COOKIE, new, salt=DEVICE_COOKIE_SALT, max_age=DEVICE_COOKIE_MAX_AGE,
                                       httponly=True, samesite="Lax", secure=settings.SESSION_COOKIE_SECURE)
        return response
