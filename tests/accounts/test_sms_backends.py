"""The real SMS and one-tap backends, checked at the HTTP request their vendor's official SDK sends.

`requests.Session.send` is replaced (both SDKs send through requests): the test sees the exact request — host,
action, signature scheme, parameters — and answers what the vendor would, so the SDK's own parsing runs too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import override_settings

from kameng.accounts.onetap import AliyunOneTapBackend, onetap_backend
from kameng.accounts.sms import AliyunSmsSender, ConsoleSmsSender, TencentSmsSender, sms_sender
from kameng.core.errors import ApplicationError

PHONE = "13812345678"

Answer = Callable[[requests.PreparedRequest], tuple[int, dict[str, Any]]]


class FakeVendor:
    def __init__(self) -> None:
        self.requests: list[requests.PreparedRequest] = []
        self.answer: Answer = lambda request: (200, {})
        self.raise_error: Exception | None = None

    def send(self, session: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.requests.append(request)
        if self.raise_error is not None:
            raise self.raise_error
        status, body = self.answer(request)
        response = requests.Response()
        response.status_code = status
        response.headers["Content-Type"] = "application/json"
        response._content = json.dumps(body).encode()
        response.url = str(request.url)
        response.request = request
        return response

    @property
    def query(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(urlsplit(str(self.requests[-1].url)).query).items()}


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> FakeVendor:
    fake = FakeVendor()

    def send(session: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        return fake.send(session, request, **kwargs)  # a plain function: the session comes in as `self`

    monkeypatch.setattr(requests.Session, "send", send)
    return fake


def _aliyun() -> AliyunSmsSender:
    return AliyunSmsSender(access_key_id="LTAI-test-id", access_key_secret="test-secret", sign_name="卡盟商城",
                           template_code="SMS_460000001")


def _tencent() -> TencentSmsSender:
    return TencentSmsSender(secret_id="AKID-test", secret_key="test-key", sdk_app_id="1400000001",
                            sign_name="卡盟商城", template_id="1888888")


def _refusal(send: Callable[[], object]) -> ApplicationError:
    with pytest.raises(ApplicationError) as refused:
        send()
    return refused.value


# --- Aliyun SMS (dysmsapi 2017-05-25 SendSms) ---------------------------------------------------------------------

def test_aliyun_sends_sendsms_with_the_number_sign_template_and_code(vendor: FakeVendor) -> None:
    vendor.answer = lambda request: (200, {"Code": "OK", "Message": "OK", "BizId": "9001", "RequestId": "r-1"})

    _aliyun().send_code(phone=PHONE, code="042917", minutes=5)

    [request] = vendor.requests
    assert request.method == "POST"
    assert urlsplit(str(request.url)).hostname == "dysmsapi.aliyuncs.com"
    assert request.headers["x-acs-action"] == "SendSms"
    assert request.headers["x-acs-version"] == "2017-05-25"
    assert request.headers["Authorization"].startswith("ACS3-HMAC-SHA256 Credential=LTAI-test-id,")
    assert "test-secret" not in str(request.headers) + str(request.url)
    assert vendor.query == {"PhoneNumbers": PHONE, "SignName": "卡盟商城", "TemplateCode": "SMS_460000001",
                            "TemplateParam": '{"code": "042917"}'}


@pytest.mark.parametrize(("vendor_code", "code", "status"), [
    ("isv.MOBILE_NUMBER_ILLEGAL", "sms_phone_refused", 400),
    ("isv.BUSINESS_LIMIT_CONTROL", "sms_provider_limit", 429),
    ("isv.AMOUNT_NOT_ENOUGH", "sms_unavailable", 503),
    ("isv.SMS_TEMPLATE_ILLEGAL", "sms_unavailable", 503),
])
def test_aliyun_refusals_become_clear_errors(vendor: FakeVendor, caplog: pytest.LogCaptureFixture,
                                             vendor_code: str, code: str, status: int) -> None:
    vendor.answer = lambda request: (200, {"Code": vendor_code, "Message": "refused", "RequestId": "r-2"})

    with caplog.at_level(logging.WARNING, logger="kameng.sms"):
        error = _refusal(lambda: _aliyun().send_code(phone=PHONE, code="042917", minutes=5))

    assert (error.code, error.status_code) == (code, status)
    assert vendor_code in caplog.text  # the operator sees the vendor's code...
    assert PHONE not in caplog.text  # ...never the number...
    assert "042917" not in caplog.text  # ...nor the code


def test_aliyun_bad_keys_are_a_503(vendor: FakeVendor) -> None:
    vendor.answer = lambda request: (400, {"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key "
                                           "is not found.", "RequestId": "r-3"})

    error = _refusal(lambda: _aliyun().send_code(phone=PHONE, code="042917", minutes=5))

    assert (error.code, error.status_code) == ("sms_unavailable", 503)
    assert error.extra == {"retry_after": 60}


def test_aliyun_unreachable_is_a_503(vendor: FakeVendor) -> None:
    vendor.raise_error = requests.ConnectionError("connection refused")

    error = _refusal(lambda: _aliyun().send_code(phone=PHONE, code="042917", minutes=5))

    assert (error.code, error.status_code) == ("sms_unavailable", 503)


# --- Tencent Cloud SMS (v20210111 SendSms) --------------------------------------------------------------------------

def test_tencent_sends_sendsms_with_the_number_sign_template_and_code(vendor: FakeVendor) -> None:
    vendor.answer = lambda request: (200, {"Response": {"SendStatusSet": [
        {"SerialNo": "5000:1", "PhoneNumber": f"+86{PHONE}", "Fee": 1, "Code": "Ok", "Message": "send success",
         "IsoCode": "CN"}], "RequestId": "r-4"}})

    _tencent().send_code(phone=PHONE, code="042917", minutes=5)

    [request] = vendor.requests
    assert request.method == "POST"
    assert urlsplit(str(request.url)).hostname == "sms.tencentcloudapi.com"
    assert request.headers["X-TC-Action"] == "SendSms"
    assert request.headers["X-TC-Version"] == "2021-01-11"
    assert request.headers["X-TC-Region"] == "ap-guangzhou"
    assert request.headers["Authorization"].startswith("TC3-HMAC-SHA256 Credential=AKID-test/")
    assert json.loads(request.body or b"{}") == {"PhoneNumberSet": [f"+86{PHONE}"], "SmsSdkAppId": "1400000001",
                                                  "SignName": "卡盟商城", "TemplateId": "1888888",
                                                  "TemplateParamSet": ["042917"]}


@pytest.mark.parametrize(("vendor_code", "code", "status"), [
    ("InvalidParameterValue.IncorrectPhoneNumber", "sms_phone_refused", 400),
    ("LimitExceeded.PhoneNumberDailyLimit", "sms_provider_limit", 429),
    ("LimitExceeded.PhoneNumberThirtySecondLimit", "sms_provider_limit", 429),
    ("FailedOperation.InsufficientBalanceInSmsPackage", "sms_unavailable", 503),
])
def test_tencent_per_number_refusals_become_clear_errors(vendor: FakeVendor, vendor_code: str, code: str,
                                                         status: int) -> None:
    vendor.answer = lambda request: (200, {"Response": {"SendStatusSet": [
        {"SerialNo": "", "PhoneNumber": f"+86{PHONE}", "Fee": 0, "Code": vendor_code, "Message": "refused",
         "IsoCode": "CN"}], "RequestId": "r-5"}})

    error = _refusal(lambda: _tencent().send_code(phone=PHONE, code="042917", minutes=5))

    assert (error.code, error.status_code) == (code, status)


def test_tencent_request_errors_become_clear_errors(vendor: FakeVendor) -> None:
    vendor.answer = lambda request: (200, {"Response": {"Error": {"Code": "AuthFailure.SecretIdNotFound",
                                                                  "Message": "secret id not found"},
                                                        "RequestId": "r-6"}})

    error = _refusal(lambda: _tencent().send_code(phone=PHONE, code="042917", minutes=5))

    assert (error.code, error.status_code) == ("sms_unavailable", 503)


# --- selection by settings ----------------------------------------------------------------------------------------

def test_the_backend_follows_the_settings() -> None:
    assert isinstance(sms_sender(), ConsoleSmsSender)
    with override_settings(KAMENG_SMS_BACKEND="aliyun", KAMENG_SMS_ALIYUN_ACCESS_KEY_ID="id",
                           KAMENG_SMS_ALIYUN_SIGN_NAME="签名", KAMENG_SMS_ALIYUN_TEMPLATE_CODE="SMS_1"):
        sender = sms_sender()
        assert isinstance(sender, AliyunSmsSender)
        assert (sender.access_key_id, sender.sign_name, sender.template_code) == ("id", "签名", "SMS_1")
    with override_settings(KAMENG_SMS_BACKEND="tencent", KAMENG_SMS_TENCENT_SDK_APP_ID="1400"):
        tencent = sms_sender()
        assert isinstance(tencent, TencentSmsSender)
        assert tencent.sdk_app_id == "1400"


# --- Aliyun 号码认证 GetMobile ---------------------------------------------------------------------------------------

def _aliyun_onetap() -> AliyunOneTapBackend:
    return AliyunOneTapBackend(access_key_id="LTAI-test-id", access_key_secret="test-secret")


def test_aliyun_onetap_exchanges_the_token_with_getmobile(vendor: FakeVendor) -> None:
    vendor.answer = lambda request: (200, {"Code": "OK", "Message": "OK", "RequestId": "r-7",
                                           "GetMobileResultDTO": {"Mobile": PHONE}})

    assert _aliyun_onetap().phone_for_token(token="carrier-token-abc") == PHONE

    [request] = vendor.requests
    assert urlsplit(str(request.url)).hostname == "dypnsapi.aliyuncs.com"
    assert request.headers["x-acs-action"] == "GetMobile"
    assert request.headers["Authorization"].startswith("ACS3-HMAC-SHA256 Credential=LTAI-test-id,")
    assert vendor.query == {"AccessToken": "carrier-token-abc"}


def test_aliyun_onetap_refused_token_is_a_clear_400(vendor: FakeVendor) -> None:
    vendor.answer = lambda request: (200, {"Code": "isv.INVALID_TOKEN", "Message": "token invalid",
                                           "RequestId": "r-8"})

    error = _refusal(lambda: _aliyun_onetap().phone_for_token(token="forged"))

    assert (error.code, error.status_code) == ("onetap_refused", 400)


def test_aliyun_onetap_unreachable_is_a_503(vendor: FakeVendor) -> None:
    vendor.raise_error = requests.ConnectionError("connection refused")

    error = _refusal(lambda: _aliyun_onetap().phone_for_token(token="carrier-token-abc"))

    assert (error.code, error.status_code) == ("onetap_unavailable", 503)


def test_the_onetap_backend_follows_the_settings() -> None:
    backend = onetap_backend()
    assert backend is not None  # the tests run with the simulators installed
    assert backend.name == "simulator"
    with override_settings(KAMENG_SIMULATORS_ENABLED=False):
        assert onetap_backend() is None  # the simulated carrier never vouches for anyone in production
    with override_settings(KAMENG_ONETAP_BACKEND=""):
        assert onetap_backend() is None
    with override_settings(KAMENG_ONETAP_BACKEND="aliyun", KAMENG_ONETAP_ALIYUN_ACCESS_KEY_ID="id"):
        aliyun = onetap_backend()
        assert isinstance(aliyun, AliyunOneTapBackend)
        assert aliyun.access_key_id == "id"
