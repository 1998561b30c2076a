"""The client's device id: what per-device limits count (SMS codes now; risk control's velocity rules later).

An app or API client names its device in the `X-Device-Id` header (8–64 letters, digits, `-` or `_`, chosen once
per installation). A browser gets a long-lived signed cookie, set the first time a page asks for the id
(`DeviceIdMiddleware` writes it on that response only, so cached pages and API answers carry no Set-Cookie).

Neither proves anything: a client that drops its cookie or changes its header is a new device. The id is one more
name to count under, beside the phone and the address, not an identity. The cookie is signed so that a client
cannot pick another device's id and use up that device's budget.

Risk control (kameng.risk) counts under `risk_device_id`: the same id, except for a browser that came without a
valid cookie (first visit, or a script that drops cookies to look new every time): that request counts under a
fingerprint of its stable headers (User-Agent, Accept-Language, the client hints) instead, so dropping the cookie
does not buy a fresh budget. The fingerprint is shared by every browser of the same make and settings, which is
why it is only the fallback. Ids are stored hashed (`device_hash`, keyed): never the cookie value itself.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from kameng.core.crypto import blind_index

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


# Headers a browser sends the same way on every request, whatever page it asks for.
FINGERPRINT_HEADERS = ("HTTP_USER_AGENT", "HTTP_ACCEPT_LANGUAGE", "HTTP_SEC_CH_UA", "HTTP_SEC_CH_UA_PLATFORM",
                       "HTTP_SEC_CH_UA_MOBILE")
DEVICE_HASH_CONTEXT = "core.device"


def device_fingerprint(request: HttpRequest) -> str:
    """A digest of the request's stable headers (not secret: it only groups requests that look alike)."""
    digest = hashlib.sha256()
    for header in FINGERPRINT_HEADERS:
        digest.update(str(request.META.get(header, ""))[:512].encode(errors="replace") + b"\x00")
    return digest.hexdigest()[:32]


def risk_device_id(request: HttpRequest) -> str:
    """What risk control counts a device under: the header's or the cookie's id, or — for a browser that came
    without a valid cookie — `f:` and its header fingerprint. Sets the cookie on the answer like `device_id`."""
    device = device_id(request)
    new = getattr(request, _NEW_DEVICE_ATTRIBUTE, None)
    if new is not None and device == f"c:{new}":
        return f"f:{device_fingerprint(request)}"
    return device


def device_hash(device: str) -> str:
    """A device id as stored (decisions, blacklists): a keyed hash, 64 hex characters."""
    return blind_index(device, context=DEVICE_HASH_CONTEXT).hex()


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
