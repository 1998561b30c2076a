"""The Tencent Cloud FaceID backend, through the official SDK with only its HTTP layer replaced: the request it
would send, and what each answer becomes."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from django.test import override_settings
from tencentcloud.common.http.request import ProxyConnection

from kameng.accounts.models import RealName, RealNameStatus
from kameng.accounts.selectors import is_verified
from kameng.accounts.services import realname_verify
from kameng.accounts.verification import (
    IdentityProviderUnavailableError,
    TencentIdentityProvider,
    VerificationOutcome,
    identity_provider,
)
from kameng.core.errors import ApplicationError
from kameng.core.masking import mask_text
from tests.accounts.ids import id_number
from tests.factories import UserFactory

NAME = "张小三"
NUMBER = id_number()
SECRET_ID = "AKIDtestsecretid0123456789"
SECRET_KEY = "testsecretkey0123456789abcdef"  # made up: the test is offline


@dataclass
class FakeTencent:
    """Stands in for the network under ProxyConnection.request: records each request, replies as told."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    error: Exception | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)

    def request(self, connection: ProxyConnection, method: str, url: str, body: Any = None,
                headers: dict[str, str] | None = None) -> requests.Response:
        self.sent.append({"method": method, "url": url, "body": body, "headers": dict(headers or {}),
                              "timeout": connection.timeout})
        if self.error is not None:
            raise self.error
        response = requests.Response()
        response.status_code = self.status
        response.headers["Content-Type"] = "application/json"
        response._content = json.dumps(self.body).encode()
        return response


@pytest.fixture
def tencent(monkeypatch: pytest.MonkeyPatch) -> FakeTencent:
    fake = FakeTencent()

    def request(connection: ProxyConnection, *args: Any, **kwargs: Any) -> requests.Response:
        return fake.request(connection, *args, **kwargs)

    monkeypatch.setattr(ProxyConnection, "request", request)
    return fake


def _answer(fake: FakeTencent, result: str, description: str = "") -> None:
    fake.body = {"Response": {"Result": result, "Description": description, "RequestId": "req-0001"}}


def _provider() -> TencentIdentityProvider:
    return TencentIdentityProvider(secret_id=SECRET_ID, secret_key=SECRET_KEY, region="ap-guangzhou",
                                   timeout_seconds=7)


def test_the_request_is_a_signed_id_card_verification(tencent: FakeTencent) -> None:
    _answer(tencent, "0", "姓名和身份证号一致")

    result = _provider().verify(name=NAME, id_number=NUMBER)

    assert result.outcome == VerificationOutcome.MATCH
    assert (result.provider, result.request_id, result.provider_code) == ("tencent", "req-0001", "0")
    [sent] = tencent.sent
    assert sent["method"] == "POST"
    assert sent["url"] == "https://faceid.tencentcloudapi.com"
    assert sent["timeout"] == 7
    headers = sent["headers"]
    assert headers["X-TC-Action"] == "IdCardVerification"
    assert headers["X-TC-Version"] == "2018-03-01"
    assert headers["X-TC-Region"] == "ap-guangzhou"
    assert headers["Host"] == "faceid.tencentcloudapi.com"
    assert headers["Authorization"].startswith(f"TC3-HMAC-SHA256 Credential={SECRET_ID}/")
    assert "/faceid/tc3_request" in headers["Authorization"]
    assert SECRET_KEY not in json.dumps(sent)
    assert json.loads(sent["body"]) == {"IdCard": NUMBER, "Name": NAME}


@pytest.mark.parametrize(("result", "outcome"), [
    ("0", VerificationOutcome.MATCH),
    ("-1", VerificationOutcome.MISMATCH),
    ("-2", VerificationOutcome.INVALID_ID_NUMBER),
    ("-3", VerificationOutcome.INVALID_NAME),
    ("-5", VerificationOutcome.NO_RECORD),
])
def test_each_answer_about_the_person_maps_to_an_outcome(tencent: FakeTencent, result: str,
                                                         outcome: VerificationOutcome) -> None:
    _answer(tencent, result)

    assert _provider().verify(name=NAME, id_number=NUMBER).outcome == outcome


@pytest.mark.parametrize("result", ["-4", "-6", "-7", "1", ""])
def test_the_provider_s_own_troubles_and_unknown_codes_are_no_answer(tencent: FakeTencent, result: str) -> None:
    _answer(tencent, result)

    with pytest.raises(IdentityProviderUnavailableError) as refused:
        _provider().verify(name=NAME, id_number=NUMBER)

    assert refused.value.status_code == 503
    assert refused.value.reason == f"Result {result}"


def test_a_network_error_is_no_answer(tencent: FakeTencent) -> None:
    tencent.error = requests.ConnectionError("connection refused")

    with pytest.raises(IdentityProviderUnavailableError) as refused:
        _provider().verify(name=NAME, id_number=NUMBER)

    assert refused.value.reason == "ClientNetworkError"


def test_a_timeout_is_no_answer(tencent: FakeTencent) -> None:
    tencent.error = requests.Timeout("read timed out")

    with pytest.raises(IdentityProviderUnavailableError):
        _provider().verify(name=NAME, id_number=NUMBER)


def test_an_http_error_status_is_no_answer(tencent: FakeTencent) -> None:
    tencent.status = 502

    with pytest.raises(IdentityProviderUnavailableError) as refused:
        _provider().verify(name=NAME, id_number=NUMBER)

    assert refused.value.reason == "ServerNetworkError"


def test_an_api_error_such_as_bad_credentials_is_no_answer(tencent: FakeTencent) -> None:
    tencent.body = {"Response": {"Error": {"Code": "AuthFailure.SecretIdNotFound", "Message": "secret id not found"},
                                 "RequestId": "req-0002"}}

    with pytest.raises(IdentityProviderUnavailableError) as refused:
        _provider().verify(name=NAME, id_number=NUMBER)

    assert refused.value.reason == "AuthFailure.SecretIdNotFound"


def test_missing_credentials_are_no_answer_and_send_nothing(tencent: FakeTencent) -> None:
    provider = TencentIdentityProvider(secret_id="", secret_key="", region="", timeout_seconds=5)

    with pytest.raises(IdentityProviderUnavailableError):
        provider.verify(name=NAME, id_number=NUMBER)

    assert tencent.sent == []


@override_settings(KAMENG_IDENTITY_BACKEND="tencent", KAMENG_TENCENTCLOUD_SECRET_ID=SECRET_ID,
                   KAMENG_TENCENTCLOUD_SECRET_KEY=SECRET_KEY, KAMENG_FACEID_REGION="ap-shanghai",
                   KAMENG_FACEID_TIMEOUT_SECONDS=4)
def test_the_backend_is_chosen_by_setting() -> None:
    provider = identity_provider()

    assert isinstance(provider, TencentIdentityProvider)
    assert (provider.secret_id, provider.region, provider.timeout_seconds) == (SECRET_ID, "ap-shanghai", 4)


# --- through the service ------------------------------------------------------------------------------------------

TENCENT = {"KAMENG_IDENTITY_BACKEND": "tencent", "KAMENG_TENCENTCLOUD_SECRET_ID": SECRET_ID,
           "KAMENG_TENCENTCLOUD_SECRET_KEY": SECRET_KEY}


@pytest.mark.django_db
@override_settings(**TENCENT)
def test_a_match_verifies_the_account_with_the_provider_s_request_id(tencent: FakeTencent) -> None:
    user = UserFactory.create()
    _answer(tencent, "0")

    realname_verify(user_id=user.pk, name=NAME, id_number=NUMBER)

    row = RealName.objects.get(user=user)
    assert (row.status, row.provider, row.provider_request_id) == (RealNameStatus.VERIFIED, "tencent", "req-0001")


@pytest.mark.django_db
@override_settings(**TENCENT)
def test_a_mismatch_from_tencent_is_a_refusal(tencent: FakeTencent) -> None:
    user = UserFactory.create()
    _answer(tencent, "-1", "姓名和身份证号不一致")

    with pytest.raises(ApplicationError) as refused:
        realname_verify(user_id=user.pk, name=NAME, id_number=NUMBER)

    assert refused.value.code == "realname_mismatch"
    row = RealName.objects.get(user=user)
    assert (row.status, row.provider_request_id, row.name) == (RealNameStatus.REJECTED, "req-0001", None)


@pytest.mark.django_db
@override_settings(**TENCENT)
def test_a_network_error_through_the_service_records_nothing_as_verified(tencent: FakeTencent,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    user = UserFactory.create()
    tencent.error = requests.ConnectionError(f"connection reset while sending {NUMBER}")

    with pytest.raises(IdentityProviderUnavailableError):
        realname_verify(user_id=user.pk, name=NAME, id_number=NUMBER)

    assert is_verified(user_id=user.pk) is False
    row = RealName.objects.get(user=user)
    assert (row.status, row.attempts) == (RealNameStatus.UNVERIFIED, 0)
    assert NUMBER not in caplog.text  # the SDK's message is not logged, only its code
    assert NAME not in caplog.text


@pytest.mark.django_db
@override_settings(**TENCENT)
def test_the_sdk_s_debug_log_of_the_request_stays_silent(tencent: FakeTencent,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """The SDK logs whole requests at DEBUG; the project's logging keeps its logger at WARNING."""
    caplog.set_level(logging.DEBUG)
    _answer(tencent, "0")

    realname_verify(user_id=UserFactory.create().pk, name=NAME, id_number=NUMBER)

    assert logging.getLogger("tencentcloud_sdk_common").getEffectiveLevel() == logging.WARNING
    assert NUMBER not in caplog.text
    assert NAME not in caplog.text


def test_were_the_sdk_s_request_logged_the_mask_would_hide_the_person() -> None:
    line = ("SendRequest: Host: faceid.tencentcloudapi.com\nMethod: POST\nUri: /\nData: "
            + json.dumps({"IdCard": NUMBER, "Name": NAME}, ensure_ascii=False))

    masked = mask_text(line)

    assert NUMBER not in masked
    assert NAME not in masked
    assert '"Name": "张*三"' in masked
    escaped = mask_text(json.dumps({"IdCard": NUMBER, "Name": NAME}))  # the SDK's json.dumps escapes Chinese
    assert NUMBER not in escaped
    assert json.dumps(NAME)[1:-1] not in escaped
