"""Sending SMS verification codes: one small protocol, a backend per provider, chosen by KAMENG_SMS_BACKEND.

- `console` (the default): writes "短信验证码 …" to the `kameng.sms` logger, the phone masked — the demo's and the
  tests' SMS. It sends nothing anywhere.
- `aliyun`: Aliyun SMS (短信服务, dysmsapi 2017-05-25) `SendSms` through the official SDK, template parameter
  `{"code": "123456"}`.
- `tencent`: Tencent Cloud SMS (v20210111) `SendSms` through the official SDK, template parameters `[code]`.

The keys, the sign name (签名) and the template come from settings (KAMENG_SMS_ALIYUN_*, KAMENG_SMS_TENCENT_*).
A provider's refusal becomes an `ApplicationError` that says what the user can do: a bad number is a 400, the
provider's own rate limit a 429, anything else (keys, balance, template, network) a 503 — logged with the
provider's code for the operator, never with the number or the code.

Callers send outside any database transaction: a slow provider must not hold a connection or a lock.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from kameng.core.errors import ApplicationError
from kameng.core.masking import mask_phone

logger = logging.getLogger("kameng.sms")

SMS_BACKENDS = ("console", "aliyun", "tencent")
SMS_TIMEOUT_MILLISECONDS = 5000
SMS_UNAVAILABLE_MESSAGE = "短信发送失败，请稍后再试"
SMS_PHONE_REFUSED_MESSAGE = "该手机号无法接收短信，请检查号码"
SMS_PROVIDER_LIMIT_MESSAGE = "该手机号今日接收短信过多，请稍后再试"

# Provider codes (from their documentation) that mean "this number", "too often for this number"; every other code
# is the operator's problem (keys, balance, sign, template) or the provider's.
ALIYUN_PHONE_CODES = frozenset({"isv.MOBILE_NUMBER_ILLEGAL", "isv.MOBILE_COUNT_OVER_LIMIT",
                                "isv.BLACK_KEY_CONTROL_LIMIT"})
ALIYUN_LIMIT_CODES = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "Throttling.User"})
TENCENT_PHONE_CODES = frozenset({"InvalidParameterValue.IncorrectPhoneNumber",
                                 "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone",
                                 "FailedOperation.PhoneNumberInBlacklist", "FailedOperation.PhoneNumberOnBlacklist"})
TENCENT_LIMIT_PREFIX = "LimitExceeded.PhoneNumber"


class SmsSender(Protocol):
    def send_code(self, *, phone: str, code: str, minutes: int) -> None:
        """Send `code` to the mainland number `phone` (11 digits); raise ApplicationError if it was not sent."""


def _unavailable(provider: str, vendor_code: str) -> ApplicationError:
    logger.error("SMS provider %s refused to send: %s", provider, vendor_code)
    return ApplicationError(SMS_UNAVAILABLE_MESSAGE, code="sms_unavailable", status_code=503,
                            extra={"retry_after": 60})


def _refused(provider: str, vendor_code: str, *, phone_codes: frozenset[str],
             is_limit: bool) -> ApplicationError:
    if vendor_code in phone_codes:
        logger.warning("SMS provider %s refused the number: %s", provider, vendor_code)
        return ApplicationError(SMS_PHONE_REFUSED_MESSAGE, code="sms_phone_refused")
    if is_limit:
        logger.warning("SMS provider %s rate-limited a number: %s", provider, vendor_code)
        return ApplicationError(SMS_PROVIDER_LIMIT_MESSAGE, code="sms_provider_limit", status_code=429,
                                extra={"retry_after": 3600})
    return _unavailable(provider, vendor_code)


class ConsoleSmsSender:
    """The development SMS: the code goes to the log (the demo's web process prints it), the number masked."""

    def send_code(self, *, phone: str, code: str, minutes: int) -> None:
        logger.info("短信验证码 %s 已发送至 %s（%s 分钟内有效；控制台短信，仅供开发与演示）", code, mask_phone(phone),
                    minutes)


@dataclass(frozen=True)
class AliyunSmsSender:
    access_key_id: str
    access_key_secret: str
    sign_name: str
    template_code: str
    endpoint: str = "dysmsapi.aliyuncs.com"

    def send_code(self, *, phone: str, code: str, minutes: int) -> None:
        from alibabacloud_dysmsapi20170525 import models
        from alibabacloud_dysmsapi20170525.client import Client
        from alibabacloud_tea_openapi.utils_models import Config
        from darabonba.exceptions import DaraException
        from darabonba.runtime import RuntimeOptions

        client = Client(Config(access_key_id=self.access_key_id, access_key_secret=self.access_key_secret,
                               endpoint=self.endpoint))
        request = models.SendSmsRequest(phone_numbers=phone, sign_name=self.sign_name,
                                        template_code=self.template_code,
                                        template_param=json.dumps({"code": code}))
        runtime = RuntimeOptions(connect_timeout=SMS_TIMEOUT_MILLISECONDS, read_timeout=SMS_TIMEOUT_MILLISECONDS,
                                 autoretry=False)
        try:
            response = client.send_sms_with_options(request, runtime)
        except DaraException as error:  # an HTTP error answer (bad keys, throttling) or no answer at all
            vendor_code = str(getattr(error, "code", "") or type(error).__name__)
            raise _refused("aliyun", vendor_code, phone_codes=ALIYUN_PHONE_CODES,
                           is_limit=vendor_code in ALIYUN_LIMIT_CODES) from error
        except Exception as error:  # the SDK wraps most failures; a connection error may still escape raw
            raise _unavailable("aliyun", type(error).__name__) from error
        body = response.body
        vendor_code = str(getattr(body, "code", "") or "")
        if vendor_code != "OK":
            raise _refused("aliyun", vendor_code or "no code", phone_codes=ALIYUN_PHONE_CODES,
                           is_limit=vendor_code in ALIYUN_LIMIT_CODES)


@dataclass(frozen=True)
class TencentSmsSender:
    secret_id: str
    secret_key: str
    sdk_app_id: str
    sign_name: str
    template_id: str
    region: str = "ap-guangzhou"
    endpoint: str = "sms.tencentcloudapi.com"

    def send_code(self, *, phone: str, code: str, minutes: int) -> None:
        from tencentcloud.common.credential import Credential
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111 import models
        from tencentcloud.sms.v20210111.sms_client import SmsClient

        http_profile = HttpProfile(endpoint=self.endpoint, reqTimeout=SMS_TIMEOUT_MILLISECONDS // 1000)
        client = SmsClient(Credential(self.secret_id, self.secret_key), self.region,
                           ClientProfile(httpProfile=http_profile))
        request = models.SendSmsRequest()
        request.SmsSdkAppId = self.sdk_app_id
        request.SignName = self.sign_name
        request.TemplateId = self.template_id
        request.TemplateParamSet = [code]
        request.PhoneNumberSet = [f"+86{phone}"]
        try:
            response = client.SendSms(request)
        except TencentCloudSDKException as error:
            vendor_code = str(error.get_code() or "")
            raise _refused("tencent", vendor_code or "no code", phone_codes=TENCENT_PHONE_CODES,
                           is_limit=vendor_code.startswith(TENCENT_LIMIT_PREFIX)) from error
        statuses = response.SendStatusSet or []
        vendor_code = str(statuses[0].Code) if statuses else "no status"
        if vendor_code != "Ok":
            raise _refused("tencent", vendor_code, phone_codes=TENCENT_PHONE_CODES,
                           is_limit=vendor_code.startswith(TENCENT_LIMIT_PREFIX))


def _configured_sender(backend: str) -> SmsSender:
    if backend == "console":
        return ConsoleSmsSender()
    if backend == "aliyun":
        return AliyunSmsSender(access_key_id=settings.KAMENG_SMS_ALIYUN_ACCESS_KEY_ID,
                               access_key_secret=settings.KAMENG_SMS_ALIYUN_ACCESS_KEY_SECRET,
                               sign_name=settings.KAMENG_SMS_ALIYUN_SIGN_NAME,
                               template_code=settings.KAMENG_SMS_ALIYUN_TEMPLATE_CODE,
                               endpoint=settings.KAMENG_SMS_ALIYUN_ENDPOINT)
    if backend == "tencent":
        return TencentSmsSender(secret_id=settings.KAMENG_SMS_TENCENT_SECRET_ID,
                                secret_key=settings.KAMENG_SMS_TENCENT_SECRET_KEY,
                                sdk_app_id=settings.KAMENG_SMS_TENCENT_SDK_APP_ID,
                                sign_name=settings.KAMENG_SMS_TENCENT_SIGN_NAME,
                                template_id=settings.KAMENG_SMS_TENCENT_TEMPLATE_ID,
                                region=settings.KAMENG_SMS_TENCENT_REGION)
    raise ImproperlyConfigured(f"KAMENG_SMS_BACKEND must be one of {', '.join(SMS_BACKENDS)}, not {backend!r}")


def sms_sender() -> SmsSender:
    """The sender KAMENG_SMS_BACKEND names, built from the settings as they are now."""
    return _configured_sender(settings.KAMENG_SMS_BACKEND)
