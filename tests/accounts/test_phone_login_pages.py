"""The storefront's login tabs (密码登录 / 短信登录 / 一键登录) and the JSON API for logging in by phone."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client, override_settings
from django.urls import reverse

from kameng.accounts import phone_login
from kameng.accounts.models import PhoneCode, User
from kameng.accounts.services import user_register
from kameng.core.device import DEVICE_COOKIE
from tests.accounts.phone_support import RecordingSender, other_code, recording_sender_install

pytestmark = pytest.mark.django_db

PHONE = "13812345678"


@pytest.fixture
def sender(monkeypatch: pytest.MonkeyPatch) -> RecordingSender:
    return recording_sender_install(monkeypatch)


def _panel(body: str, name: str) -> str:
    match = re.search(rf'<div class="tab-panel" data-panel="{name}"[^>]*>', body)
    assert match is not None, name
    return match.group(0)


def _logged_in_user_id(client: Client) -> int | None:
    user_id = client.session.get("_auth_user_id")
    return int(user_id) if user_id is not None else None


# --- pages ---------------------------------------------------------------------------------------------------------

def test_the_login_page_has_three_tabs_and_shows_the_chosen_one(client: Client) -> None:
    body = client.get(reverse("web:login")).content.decode()

    for label in ("密码登录", "短信登录", "一键登录"):
        assert label in body
    assert "hidden" not in _panel(body, "password")
    assert "hidden" in _panel(body, "sms")
    sms = client.get(reverse("web:login"), {"tab": "sms"}).content.decode()
    assert "hidden" not in _panel(sms, "sms")
    assert "hidden" in _panel(sms, "password")
    assert 'src="/static/web/login.js"' in sms
    assert "<script>" not in sms  # the CSP allows no inline script


def test_an_sms_login_without_javascript(client: Client, sender: RecordingSender) -> None:
    sent = client.post(reverse("web:login_sms_send"), {"phone": PHONE, "next": "/wallet/"})

    assert sent.status_code == 200
    body = sent.content.decode()
    assert "验证码已发送，5 分钟内有效" in body
    assert f'value="{PHONE}"' in body  # the number is kept for the second step
    assert 'data-resend-in="60"' in body
    assert DEVICE_COOKIE in sent.cookies
    logged = client.post(reverse("web:login_sms"), {"phone": PHONE, "code": sender.last_code, "next": "/wallet/"})

    assert logged.status_code == 302
    assert logged["Location"] == "/wallet/"
    user = User.objects.get()
    assert _logged_in_user_id(client) == user.pk
    assert "注册成功" in client.get("/").content.decode()


@pytest.mark.parametrize("after_sending", [False, True])
def test_enter_in_the_code_field_logs_in(client: Client, sender: RecordingSender, after_sending: bool) -> None:
    """Enter presses a form's first submit button: it must be 登录 / 注册, not 获取验证码 (which, during its
    countdown, is disabled — Enter did nothing — and otherwise sent a new code)."""
    page = (client.post(reverse("web:login_sms_send"), {"phone": PHONE}) if after_sending
            else client.get(reverse("web:login"), {"tab": "sms"}))

    form = re.search(r'<form[^>]*id="sms-login-form".*?</form>', page.content.decode(), re.S)
    assert form is not None
    buttons = re.findall(r'<button type="submit"[^>]*>', form.group(0))
    assert 'data-testid="sms-submit"' in buttons[0]
    assert "formaction" not in buttons[0]
    assert 'data-testid="sms-send"' in buttons[1]
    assert f'formaction="{reverse("web:login_sms_send")}"' in buttons[1]


def test_an_existing_account_logs_in_by_code_and_still_by_password(client: Client, sender: RecordingSender) -> None:
    user = user_register(login=PHONE, password="correct-horse-9")
    client.post(reverse("web:login_sms_send"), {"phone": PHONE})
    client.post(reverse("web:login_sms"), {"phone": PHONE, "code": sender.last_code})
    assert _logged_in_user_id(client) == user.pk

    other = Client()
    response = other.post(reverse("web:login"), {"username": PHONE, "password": "correct-horse-9"})
    assert response.status_code == 302
    assert _logged_in_user_id(other) == user.pk


def test_a_wrong_code_is_a_400_on_the_sms_tab(client: Client, sender: RecordingSender) -> None:
    client.post(reverse("web:login_sms_send"), {"phone": PHONE})

    response = client.post(reverse("web:login_sms"), {"phone": PHONE, "code": other_code(sender.last_code)})

    assert response.status_code == 400
    body = response.content.decode()
    assert "验证码错误或已失效，请重新获取" in body
    assert "hidden" not in _panel(body, "sms")
    assert _logged_in_user_id(client) is None


@pytest.mark.parametrize(("data", "message"), [
    ({"phone": "1381234", "code": "123456"}, "手机号格式不正确"),
    ({"phone": PHONE, "code": ""}, "请输入 6 位数字验证码"),
    ({"phone": PHONE, "code": "12ab56"}, "请输入 6 位数字验证码"),
    ({"code": "123456"}, "请输入手机号"),
])
def test_malformed_input_is_a_400(client: Client, data: dict[str, str], message: str) -> None:
    response = client.post(reverse("web:login_sms"), data)

    assert response.status_code == 400
    assert message in response.content.decode()


def test_asking_again_too_soon_is_a_429_with_retry_after(client: Client, sender: RecordingSender) -> None:
    client.post(reverse("web:login_sms_send"), {"phone": PHONE})

    response = client.post(reverse("web:login_sms_send"), {"phone": PHONE})

    assert response.status_code == 429
    assert 55 <= int(response["Retry-After"]) <= 60
    assert "验证码发送过于频繁" in response.content.decode()
    assert len(sender.sent) == 1


@override_settings(KAMENG_SMS_PER_DEVICE_PER_HOUR=2)
def test_a_browser_is_one_device_across_numbers(client: Client, sender: RecordingSender) -> None:
    for number in range(2):
        assert client.post(reverse("web:login_sms_send"), {"phone": f"1390000000{number}"},
                           REMOTE_ADDR=f"203.0.113.{number}").status_code == 200

    response = client.post(reverse("web:login_sms_send"), {"phone": "13900000009"}, REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 429
    assert "当前设备获取验证码过于频繁" in response.content.decode()
    assert len(sender.sent) == 2


def test_a_provider_failure_is_a_503_and_keeps_no_code(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from kameng.core.errors import ApplicationError

    sender = recording_sender_install(monkeypatch)
    sender.fail_with = ApplicationError("短信发送失败，请稍后再试", code="sms_unavailable", status_code=503,
                                        extra={"retry_after": 60})

    response = client.post(reverse("web:login_sms_send"), {"phone": PHONE})

    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert "短信发送失败，请稍后再试" in response.content.decode()
    assert PhoneCode.objects.count() == 0


def test_the_sms_tab_reads_english(client: Client, sender: RecordingSender) -> None:
    client.post(reverse("set_language"), {"language": "en", "next": "/"})

    body = client.post(reverse("web:login_sms_send"), {"phone": PHONE}).content.decode()

    for text in ("Password", "Text message code", "One-tap", "Code sent. It is valid for 5 minutes", "Send code",
                 "Log in / Sign up"):
        assert text in body
    refused = client.post(reverse("web:login_sms_send"), {"phone": PHONE}).content.decode()
    assert "Codes are being requested too often: try again in" in refused


def test_one_tap_through_the_simulated_carrier(client: Client) -> None:
    start = client.get(reverse("web:login"), {"tab": "onetap", "next": "/wallet/"}).content.decode()
    match = re.search(r'href="([^"]+)" data-testid="onetap-start"', start)
    assert match is not None
    carrier_url = match.group(1).replace("&amp;", "&")
    assert carrier_url.startswith("/sim/onetap/?return=")

    picked = client.post(carrier_url, {"phone": "13912345678", "login": "1",
                                       "return": client.get(carrier_url).context["return_url"]})
    assert picked.status_code == 302
    back = client.get(picked["Location"])
    assert back.status_code == 200
    body = back.content.decode()
    assert 'data-autosubmit="1"' in body
    token = re.search(r'name="token" value="([^"]+)"', body)
    assert token is not None
    logged = client.post(reverse("web:login_onetap"), {"token": token.group(1), "next": "/wallet/"})

    assert logged.status_code == 302
    assert logged["Location"] == "/wallet/"
    assert User.objects.get().phone == "13912345678"
    replay = Client().post(reverse("web:login_onetap"), {"token": token.group(1)})
    assert replay.status_code == 400
    assert "一键登录凭证已使用过" in replay.content.decode()


def test_the_simulated_carrier_page_says_what_it_simulates(client: Client) -> None:
    start = client.get(reverse("web:login"), {"tab": "onetap"}).content.decode()
    match = re.search(r'href="([^"]+)" data-testid="onetap-start"', start)
    assert match is not None

    body = client.get(match.group(1).replace("&amp;", "&")).content.decode()

    assert '<link rel="icon" href="data:,">' in body  # no request for /favicon.ico
    assert "模拟运营商" in body
    assert "不会发送真实短信" in body
    assert "扣款" not in body  # not a payment page
    assert 'class="button secondary" data-testid="onetap-switch"' in body


def test_a_forged_one_tap_token_is_a_400(client: Client) -> None:
    response = client.post(reverse("web:login_onetap"), {"token": "forged"})

    assert response.status_code == 400
    assert "一键登录凭证无效" in response.content.decode()
    assert User.objects.count() == 0


# --- JSON API ------------------------------------------------------------------------------------------------------

def _post(client: Client, path: str, body: dict[str, Any], **headers: Any) -> Any:
    return client.post(f"/api/v1/account/{path}", json.dumps(body), content_type="application/json", **headers)


def test_the_api_logs_in_by_code_and_opens_a_session(client: Client, sender: RecordingSender) -> None:
    sent = _post(client, "phone/code", {"phone": PHONE}, HTTP_X_DEVICE_ID="app-install-0001")

    assert sent.status_code == 200
    assert sent.json() == {"expires_in": 300, "resend_in": 60}
    logged = _post(client, "phone/login", {"phone": PHONE, "code": sender.last_code})

    assert logged.status_code == 200
    user = User.objects.get()
    assert logged.json() == {"user_id": user.pk, "username": user.username, "created": True}
    assert client.get("/api/v1/shop/wallet").status_code == 200  # the session authenticates the shop's routes


def test_the_api_answers_400_for_a_bad_number_or_code(client: Client, sender: RecordingSender) -> None:
    bad_phone = _post(client, "phone/code", {"phone": "12345"})
    assert (bad_phone.status_code, bad_phone.json()["code"]) == (400, "invalid_phone")
    _post(client, "phone/code", {"phone": PHONE})
    wrong = _post(client, "phone/login", {"phone": PHONE, "code": other_code(sender.last_code)})
    assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_code")
    malformed = _post(client, "phone/login", {"phone": PHONE, "code": "12"})
    assert (malformed.status_code, malformed.json()["code"]) == (400, "invalid_code_format")
    assert client.get("/api/v1/shop/wallet").status_code == 401


def test_the_api_answers_429_with_retry_after(client: Client, sender: RecordingSender) -> None:
    _post(client, "phone/code", {"phone": PHONE})

    again = _post(client, "phone/code", {"phone": PHONE})

    assert again.status_code == 429
    assert again.json()["code"] == "too_many_codes"
    assert 55 <= again.json()["extra"]["retry_after"] <= 60
    assert again["Retry-After"] == str(again.json()["extra"]["retry_after"])


@override_settings(KAMENG_SMS_PER_DEVICE_PER_HOUR=1)
def test_the_api_counts_per_device_header(client: Client, sender: RecordingSender) -> None:
    assert _post(client, "phone/code", {"phone": "13900000001"}, HTTP_X_DEVICE_ID="app-install-0001",
                 REMOTE_ADDR="203.0.113.1").status_code == 200
    refused = _post(client, "phone/code", {"phone": "13900000002"}, HTTP_X_DEVICE_ID="app-install-0001",
                    REMOTE_ADDR="203.0.113.2")
    other_device = _post(client, "phone/code", {"phone": "13900000003"}, HTTP_X_DEVICE_ID="app-install-0002",
                         REMOTE_ADDR="203.0.113.3")

    assert refused.status_code == 429
    assert other_device.status_code == 200
    assert len(sender.sent) == 2


def test_the_api_takes_json_only(client: Client, sender: RecordingSender) -> None:
    response = client.post("/api/v1/account/phone/code", json.dumps({"phone": PHONE}), content_type="text/plain")

    assert response.status_code == 415
    assert response.json()["code"] == "json_required"
    assert sender.sent == []


def test_the_api_one_tap_and_its_refusals(client: Client) -> None:
    from kameng.simulators.onetap import simulated_onetap_token

    token = simulated_onetap_token(phone=PHONE)
    logged = _post(client, "phone/onetap", {"token": token})
    assert logged.status_code == 200
    assert logged.json()["created"] is True
    replayed = _post(Client(), "phone/onetap", {"token": token})
    assert (replayed.status_code, replayed.json()["code"]) == (400, "onetap_token_used")
    forged = _post(Client(), "phone/onetap", {"token": token[:-3] + "xyz"})
    assert (forged.status_code, forged.json()["code"]) == (400, "onetap_token_invalid")


def test_the_code_never_reaches_the_cache_or_the_answer(client: Client, sender: RecordingSender) -> None:
    sent = _post(client, "phone/code", {"phone": PHONE})

    assert sender.last_code not in sent.content.decode()
    backend = getattr(cache, "_cache", None)
    if backend is not None and hasattr(backend, "get_client"):
        values = [backend.get_client().get(key) for key in backend.get_client().scan_iter(
            match=f"{cache.key_prefix}:*")]
        assert not [value for value in values if value and sender.last_code.encode() in value]
    assert phone_login.CODE_DIGITS == 6
