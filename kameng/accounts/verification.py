"""Identity providers: does this name go with this ID number? (实名核验, name + ID two-factor)

`identity_provider()` returns the backend KAMENG_IDENTITY_BACKEND names:

- `local` — for the demo and the tests, no network. It answers from the 3-digit sequence of the number (digits
  15–17), so a test or a demo can ask for each answer with a checksum-valid number: 999 → mismatch (不一致),
  998 → no such record, 997 → the provider is unavailable; anything else → match. It must never be the backend of
  a real shop (every valid number would "verify"): base settings choose it only when DEBUG is on.
- `tencent` — Tencent Cloud FaceID `IdCardVerification` (身份证二要素核验) through the official SDK
  (tencentcloud-sdk-python-faceid), credentials from KAMENG_TENCENTCLOUD_SECRET_ID / _SECRET_KEY.

A provider is called outside any database transaction (it is a network call, and each call is billed). It
returns a `VerificationResult` for every answer the provider gave about the person, and raises
`IdentityProviderUnavailableError` (503, retryable) when it gave none: network errors, the provider's own faults, its
daily limit, missing credentials. Nothing here logs a name or an ID number.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from kameng.core.errors import ApplicationError

logger = logging.getLogger(__name__)

UNAVAILABLE_MESSAGE = "实名认证服务暂时不可用，请稍后重试"
UNAVAILABLE_RETRY_AFTER_SECONDS = 30


class VerificationOutcome(StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"
    INVALID_ID_NUMBER = "invalid_id_number"
    INVALID_NAME = "invalid_name"
    NO_RECORD = "no_record"


@dataclass(frozen=True)
class VerificationResult:
    outcome: VerificationOutcome
    provider: str
    request_id: str = ""  # the provider's request id, for its support desk
    provider_code: str = ""


class IdentityProviderUnavailableError(ApplicationError):
    """The provider gave no answer about the person: try again later. Nothing was recorded as verified."""

    status_code = 503

    def __init__(self, *, reason: str) -> None:
        super().__init__(UNAVAILABLE_MESSAGE, code="identity_provider_unavailable",
                         extra={"retryable": True, "retry_after": UNAVAILABLE_RETRY_AFTER_SECONDS})
        self.reason = reason  # for logs and tests, never shown


class IdentityProvider(Protocol):
    name: str

    def verify(self, *, name: str, id_number: str) -> VerificationResult: ...


# --- local ------------------------------------------------------------------------------------------------------

LOCAL_MISMATCH_SEQUENCE = "999"
LOCAL_NO_RECORD_SEQUENCE = "998"
LOCAL_UNAVAILABLE_SEQUENCE = "997"


class LocalIdentityProvider:
    """Deterministic answers from the number's sequence digits (see the module docstring)."""

    name = "local"

    def verify(self, *, name: str, id_number: str) -> VerificationResult:
        sequence = id_number[14:17]
        if sequence == LOCAL_UNAVAILABLE_SEQUENCE:
            raise IdentityProviderUnavailableError(reason="local provider asked to be unavailable")
        outcome = {LOCAL_MISMATCH_SEQUENCE: VerificationOutcome.MISMATCH,
                   LOCAL_NO_RECORD_SEQUENCE: VerificationOutcome.NO_RECORD}.get(sequence, VerificationOutcome.MATCH)
        return VerificationResult(outcome=outcome, provider=self.name)


# --- Tencent Cloud FaceID -----------------------------------------------------------------------------------------

# IdCardVerification's Result codes. "0" and "-1" are billed answers about the person; the others are not.
TENCENT_OUTCOMES = {
    "0": VerificationOutcome.MATCH,  # 姓名和身份证号一致
    "-1": VerificationOutcome.MISMATCH,  # 姓名和身份证号不一致
    "-2": VerificationOutcome.INVALID_ID_NUMBER,  # 非法身份证号（长度、校验位等不正确）
    "-3": VerificationOutcome.INVALID_NAME,  # 非法姓名（长度、格式等不正确）
    "-5": VerificationOutcome.NO_RECORD,  # 证件库中无此身份证记录
}
# -4 证件库服务异常, -6 权威比对系统升级中, -7 认证次数超过当日限制, and any code not documented: no answer.


class TencentIdentityProvider:
    name = "tencent"

    def __init__(self, *, secret_id: str, secret_key: str, region: str, timeout_seconds: int,
                 endpoint: str = "") -> None:
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.region = region
        self.timeout_seconds = timeout_seconds
        self.endpoint = endpoint

    def verify(self, *, name: str, id_number: str) -> VerificationResult:
        # Imported here: only a shop using this backend pays for loading the SDK.
        from tencentcloud.common.credential import Credential
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.faceid.v20180301 import faceid_client, models

        if not (self.secret_id and self.secret_key):
            logger.error("Tencent Cloud identity backend without KAMENG_TENCENTCLOUD_SECRET_ID/_SECRET_KEY")
            raise IdentityProviderUnavailableError(reason="not configured")
        http_profile = HttpProfile(reqTimeout=self.timeout_seconds, endpoint=self.endpoint or None)
        client = faceid_client.FaceidClient(Credential(self.secret_id, self.secret_key), self.region,
                                            ClientProfile(httpProfile=http_profile))
        request = models.IdCardVerificationRequest()
        request.Name = name
        request.IdCard = id_number
        try:
            response = client.IdCardVerification(request)
        except TencentCloudSDKException as error:
            # The code only: a message may quote the server's reply.
            logger.warning("Tencent Cloud IdCardVerification failed: %s (request id %s)",
                           error.get_code(), error.get_request_id())
            raise IdentityProviderUnavailableError(reason=str(error.get_code())) from None
        result = str(response.Result)
        request_id = str(response.RequestId or "")
        outcome = TENCENT_OUTCOMES.get(result)
        if outcome is None:
            logger.warning("Tencent Cloud IdCardVerification gave no answer: Result %s (request id %s)",
                           result, request_id)
            raise IdentityProviderUnavailableError(reason=f"Result {result}")
        return VerificationResult(outcome=outcome, provider=self.name, request_id=request_id, provider_code=result)


def identity_provider() -> IdentityProvider:
    backend = settings.KAMENG_IDENTITY_BACKEND
    if backend == "local":
        return LocalIdentityProvider()
    if backend == "tencent":
        return TencentIdentityProvider(
            secret_id=settings.KAMENG_TENCENTCLOUD_SECRET_ID, secret_key=settings.KAMENG_TENCENTCLOUD_SECRET_KEY,
            region=settings.KAMENG_FACEID_REGION, timeout_seconds=settings.KAMENG_FACEID_TIMEOUT_SECONDS,
            endpoint=settings.KAMENG_FACEID_ENDPOINT)
    raise ImproperlyConfigured(f"KAMENG_IDENTITY_BACKEND must be 'local' or 'tencent', not {backend!r}")
