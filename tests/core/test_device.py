"""The device id helper: X-Device-Id for apps, a signed cookie for browsers, set only when a page asked."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from kameng.core.device import DEVICE_COOKIE, DeviceIdMiddleware, device_id


def _through_middleware(request: HttpRequest, *, asks: bool) -> tuple[str | None, HttpResponse]:
    seen: list[str] = []

    def view(request: HttpRequest) -> HttpResponse:
        if asks:
            seen.append(device_id(request))
        return HttpResponse("ok")

    response = DeviceIdMiddleware(view)(request)
    return (seen[0] if seen else None), response


def test_a_well_formed_header_names_the_device() -> None:
    request = RequestFactory().get("/", HTTP_X_DEVICE_ID="app-install-0001")

    assert device_id(request) == "h:app-install-0001"


def test_a_malformed_header_is_ignored() -> None:
    for header in ("short", "x" * 65, "has space 12345", "中文设备编号一二三四"):
        request = RequestFactory().get("/", HTTP_X_DEVICE_ID=header)
        assert device_id(request).startswith("c:"), header


def test_a_browser_gets_a_signed_cookie_once_and_keeps_its_id() -> None:
    first_id, first = _through_middleware(RequestFactory().get("/"), asks=True)
    cookie = first.cookies[DEVICE_COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) > 365 * 24 * 3600

    again = RequestFactory().get("/")
    again.COOKIES[DEVICE_COOKIE] = cookie.value
    second_id, second = _through_middleware(again, asks=True)

    assert second_id == first_id
    assert DEVICE_COOKIE not in second.cookies  # nothing new to set


def test_a_forged_cookie_is_a_new_device() -> None:
    request = RequestFactory().get("/")
    request.COOKIES[DEVICE_COOKIE] = "chosen-device-id-0001:forged-signature"

    device, response = _through_middleware(request, asks=True)

    assert device is not None
    assert "chosen-device-id-0001" not in device
    assert DEVICE_COOKIE in response.cookies


def test_no_cookie_is_set_unless_a_page_asks() -> None:
    """Cached pages and API answers carry no Set-Cookie of ours."""
    _, response = _through_middleware(RequestFactory().get("/"), asks=False)

    assert DEVICE_COOKIE not in response.cookies


def test_the_middleware_is_installed() -> None:
    from django.conf import settings

    assert "kameng.core.device.DeviceIdMiddleware" in settings.MIDDLEWARE
