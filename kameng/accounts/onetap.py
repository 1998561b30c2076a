"""One-tap login (一键登录): a token from the carrier's SDK exchanged for the phone number it vouches for.

The client (an app, or a page using the carrier's H5 SDK) gets a token from the carrier for the SIM's number and
hands it to us; the server exchanges it, once, for the number. Backends, chosen by KAMENG_ONETAP_BACKEND:

- `aliyun`: Aliyun 号码认证 (dypnsapi 2017-05-25) `GetMobile` — AccessToken in, Mobile out — through the official
  SDK, with KAMENG_ONETAP_ALIYUN_ACCESS_KEY_ID / _SECRET.
- `simulator`: the demo's carrier (kameng/simulators/onetap.py, a page at /sim/onetap/ where the tester picks the
  "SIM" number) signs short-lived single-use tokens; this backend checks them the way the carrier's API would:
  a forged token, an expired one and a replayed one are each refused with their own clear error. It only works
  where the simulators are installed (KAMENG_SIMULATORS_ENABLED): anywhere else one-tap is off.
- empty: one-tap is off (the login page does not offer it, the API answers 400 onetap_disabled).

The exchange is a network call: callers make it outside any database transaction.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

from kameng.core.crypto import DecryptionError, blind_index, decrypt_text
from kameng.core.errors import ApplicationError

logger = logging.getLogger("kameng.onetap")

ONETAP_BACKENDS = ("", "aliyun", "simulator")
ONETAP_TIMEOUT_MILLISECONDS = 5000
# What the simulated carrier signs its tokens with (kameng/simulators/onetap.py issues them): Django's signing
# under SECRET_KEY with this salt, so nobody without the server's key can make one.
SIMULATED_CARRIER_SALT = "kameng.simulators.onetap.token"
SIMULATED_CARRIER_TOKEN_SECONDS = 120
# The number inside a simulated token is encrypted (a real carrier's token is opaque too): the token travels in the
# login page's address, and so in the browser's history.
SIMULATED_CARRIER_PHONE_CONTEXT = "accounts.onetap.simulated_phone"
ONETAP_REPLAY_CONTEXT = "accounts.onetap.used"

ONETAP_UNAVAILABLE_MESSAGE = "一键登录暂不可用，请使用短信验证码登录"
ONETAP_DISABLED_MESSAGE = "本站未开通一键登录，请使用短信验证码登录"
ONETAP_INVALID_MESSAGE = "一键登录凭证无效，请重新一键登录或使用短信验证码登录"
ONETAP_EXPIRED_MESSAGE = "一键登录凭证已过期，请重新一键登录"
ONETAP_USED_MESSAGE = "一键登录凭证已使用过，请重新一键登录"
ONETAP_FAILED_MESSAGE = "本机号码认证失败，请使用短信验证码登录"


class OneTapBackend(Protocol):
    @property
    def name(self) -> str:
        """The KAMENG_ONETAP_BACKEND value that selects it."""

    def phone_for_token(self, *, token: str) -> str:
        """The number the carrier's `token` vouches for; ApplicationError if it vouches for none."""


def _token_error(message: str, code: str) -> ApplicationError:
    return ApplicationError(message, code=code)


def _unavailable() -> ApplicationError:
    return ApplicationError(ONETAP_UNAVAILABLE_MESSAGE, code="onetap_unavailable", status_code=503,
                            extra={"retry_after": 60})


class SimulatedCarrierBackend:
    """Checks tokens of the demo's carrier simulator as Aliyun checks a real carrier's: signature, age, single use."""

    name = "simulator"

    def phone_for_token(self, *, token: str) -> str:
        try:
            payload: Any = signing.loads(token, salt=SIMULATED_CARRIER_SALT, max_age=SIMULATED_CARRIER_TOKEN_SECONDS)
        except signing.SignatureExpired as error:
            raise _token_error(ONETAP_EXPIRED_MESSAGE, "onetap_token_expired") from error
        except signing.BadSignature as error:
            raise _token_error(ONETAP_INVALID_MESSAGE, "onetap_token_invalid") from error
        if not isinstance(payload, dict) or not isinstance(payload.get("phone"), str) or not payload.get("nonce"):
            raise _token_error(ONETAP_INVALID_MESSAGE, "onetap_token_invalid")
        try:
            phone = decrypt_text(base64.urlsafe_b64decode(payload["phone"]), context=SIMULATED_CARRIER_PHONE_CONTEXT)
        except (ValueError, DecryptionError, UnicodeDecodeError) as error:
            raise _token_error(ONETAP_INVALID_MESSAGE, "onetap_token_invalid") from error
        # Single use, as the carrier's token is: the first exchange marks the token's nonce for longer than the token
        # lives, so a second one finds the mark.
        used_key = "onetap-used:" + blind_index(str(payload["nonce"]), context=ONETAP_REPLAY_CONTEXT).hex()
        if not cache.add(used_key, 1, timeout=SIMULATED_CARRIER_TOKEN_SECONDS * 2):
            raise _token_error(ONETAP_USED_MESSAGE, "onetap_token_used")
        return phone


@dataclass(frozen=True)
class AliyunOneTapBackend:
    """Aliyun 号码认证 GetMobile. The carrier enforces the token's age and single use; we map its refusals."""

    access_key_id: str
    access_key_secret: str
    endpoint: str = "dypnsapi.aliyuncs.com"
    name: str = "aliyun"

    def phone_for_token(self, *, token: str) -> str:
        from alibabacloud_dypnsapi20170525 import models
        from alibabacloud_dypnsapi20170525.client import Client
        from alibabacloud_tea_openapi.utils_models import Config
        from darabonba.exceptions import DaraException
        from darabonba.runtime import RuntimeOptions

        client = Client(Config(access_key_id=self.access_key_id, access_key_secret=self.access_key_secret,
                               endpoint=self.endpoint))
        runtime = RuntimeOptions(connect_timeout=ONETAP_TIMEOUT_MILLISECONDS,
                                 read_timeout=ONETAP_TIMEOUT_MILLISECONDS, autoretry=False)
        try:
            response = client.get_mobile_with_options(models.GetMobileRequest(access_token=token), runtime)
        except DaraException as error:
            vendor_code = str(getattr(error, "code", "") or type(error).__name__)
            logger.warning("Aliyun GetMobile failed: %s", vendor_code)
            raise (_unavailable() if vendor_code.startswith(("Throttling", "InvalidAccessKeyId", "SignatureDoes",
                                                              "Forbidden", "InternalError", "ServiceUnavailable"))
                   else _token_error(ONETAP_FAILED_MESSAGE, "onetap_refused")) from error
        except Exception as error:  # no answer at all
            logger.warning("Aliyun GetMobile failed: %s", type(error).__name__)
            raise _unavailable() from error
        body = response.body
        vendor_code = str(getattr(body, "code", "") or "")
        result = getattr(body, "get_mobile_result_dto", None)
        mobile = str(getattr(result, "mobile", "") or "")
        if vendor_code != "OK" or not mobile:
            # e.g. isv.INVALID_TOKEN (forged or mistyped), isv.TOKEN_EXPIRED / used (unverified code names)
            logger.warning("Aliyun GetMobile refused the token: %s", vendor_code or "no code")
            raise _token_error(ONETAP_FAILED_MESSAGE, "onetap_refused")
        return mobile.removeprefix("+86").removeprefix("86") if len(mobile) > 11 else mobile


def onetap_backend() -> OneTapBackend | None:
    """The backend KAMENG_ONETAP_BACKEND names, or None when one-tap is off (the simulator outside a demo is off)."""
    backend = settings.KAMENG_ONETAP_BACKEND
    if backend == "":
        return None
    if backend == "simulator":
        return SimulatedCarrierBackend() if settings.KAMENG_SIMULATORS_ENABLED else None
    if backend == "aliyun":
        return AliyunOneTapBackend(access_key_id=settings.KAMENG_ONETAP_ALIYUN_ACCESS_KEY_ID,
                                   access_key_secret=settings.KAMENG_ONETAP_ALIYUN_ACCESS_KEY_SECRET,
                                   endpoint=settings.KAMENG_ONETAP_ALIYUN_ENDPOINT)
    raise ImproperlyConfigured(f"KAMENG_ONETAP_BACKEND must be one of {ONETAP_BACKENDS}, not {backend!r}")


def onetap_phone_for_token(*, token: str) -> str:
    """Exchange a carrier token for its number (outside any transaction)."""
    backend = onetap_backend()
    if backend is None:
        raise ApplicationError(ONETAP_DISABLED_MESSAGE, code="onetap_disabled")
    token = token.strip()
    if not token or len(token) > 4096:
        raise _token_error(ONETAP_INVALID_MESSAGE, "onetap_token_invalid")
    return backend.phone_for_token(token=token)
