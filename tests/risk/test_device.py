"""Device identity for risk control: the header's or cookie's id, the header fingerprint for a browser without a
cookie, and only keyed hashes stored."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from kameng.core.device import (
    DEVICE_COOKIE,
    DEVICE_COOKIE_SALT,
    device_fingerprint,
    device_hash,
    device_id,
    risk_device_id,
)

CHROME = {"HTTP_USER_AGENT": "Mozilla/5.0 (Windows NT 10.0) Chrome/130", "HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9"}


def _request(**meta: str) -> HttpRequest:
    request = RequestFactory().get("/")
    request.META.update(meta)
    return request


def test_an_app_is_its_header_id() -> None:
    assert risk_device_id(_request(HTTP_X_DEVICE_ID="app-install-0001", **CHROME)) == "h:app-install-0001"


def test_a_browser_with_its_cookie_is_the_cookie_id_whatever_its_address() -> None:
    first = _request(**CHROME)
    minted = device_id(first)
    response = HttpResponse()
    response.set_signed_cookie(DEVICE_COOKIE, minted[2:], salt=DEVICE_COOKIE_SALT)
    again = _request(REMOTE_ADDR="198.51.100.7", **CHROME)
    again.COOKIES[DEVICE_COOKIE] = response.cookies[DEVICE_COOKIE].value
    assert risk_device_id(again) == minted


def test_a_browser_without_a_cookie_counts_under_its_header_fingerprint_every_time() -> None:
    first, second = _request(**CHROME), _request(**CHROME)
    assert risk_device_id(first) == risk_device_id(second) == f"f:{device_fingerprint(first)}"
    assert device_id(first) != device_id(second)  # the SMS limits keep their own behaviour: a new cookie id
    firefox = _request(HTTP_USER_AGENT="Mozilla/5.0 Firefox/131", HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert risk_device_id(firefox) != risk_device_id(first)


def test_a_forged_cookie_is_a_new_device() -> None:
    request = _request(**CHROME)
    request.COOKIES[DEVICE_COOKIE] = "someone-elses-device-id"
    assert risk_device_id(request).startswith("f:")


def test_device_ids_are_stored_as_keyed_hashes() -> None:
    hashed = device_hash("h:app-install-0001")
    assert len(hashed) == 64
    assert "app-install" not in hashed
    assert hashed == device_hash("h:app-install-0001") != device_hash("h:app-install-0002")
