"""Logging in by phone in one step: an SMS code (登录或注册) or a carrier one-tap token; an unknown number registers.

SMS codes. Six random digits, valid for KAMENG_SMS_CODE_SECONDS (5 minutes: valid before the instant it turns five
minutes old, not at it), single use, dead after KAMENG_SMS_CODE_MAX_ATTEMPTS wrong tries, compared in constant time.
Only the newest code of a number counts: sending a new one retires the old. Stored as rows (kameng.accounts.
phone_models: attempts and single use survive a restart), hashed with a key the database does not hold.

Sending is limited before anything is sent, in the cache (kameng.core.counters, shared by every web node): one code
per number per KAMENG_SMS_RESEND_SECONDS, and KAMENG_SMS_PER_PHONE_PER_HOUR / _PER_DAY per number,
KAMENG_SMS_PER_ADDRESS_PER_HOUR per client address (/64 for IPv6), KAMENG_SMS_PER_DEVICE_PER_HOUR per device
(kameng.core.device). A refusal is a 429 with `retry_after`. Every request past the cooldown counts against every
limit, sent or not, so a script that ignores the answers still runs dry. The answer to "send a code" is the same
for a registered number and a new one.

The provider is called after the code's row is committed and outside any transaction (kameng.accounts.sms).

Risk control (kameng.risk.engine): the sms checkpoint decides before the limits above are counted; a phone login
goes through the login checkpoint (or, for a new number, the register checkpoint) with the phone proved, so a
`require_sms` rule is satisfied there.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from kameng.accounts.models import User
from kameng.accounts.onetap import onetap_phone_for_token
from kameng.accounts.phone_models import PhoneCode, PhoneCodePurpose
from kameng.accounts.selectors import phone_index_of
from kameng.accounts.services import PHONE_RE, login_risk_check, phone_account_username, register_risk_check
from kameng.accounts.sms import sms_sender
from kameng.accounts.throttle import LOCK_MESSAGES, registration_lock, registration_take
from kameng.core.counters import counter_hit, counter_seconds_left
from kameng.core.crypto import blind_index
from kameng.core.errors import ApplicationError
from kameng.core.http import address_block
from kameng.risk.engine import RiskContext, risk_check
from kameng.risk.models import Checkpoint

CODE_DIGITS = 6
CODE_RE = re.compile(r"^\d{6}$")
CODE_CONTEXT = "accounts.phone_code"
LIMIT_CONTEXT = "accounts.phone_code.limit"
HOUR = 3600
DAY = 24 * 3600
# Rows are kept this long (the record of what was sent), then removed (phone_codes_purge, hourly from Celery beat).
KEEP_CODES_FOR = timedelta(days=7)

INVALID_PHONE_MESSAGE = "手机号格式不正确（11 位中国大陆手机号）"
INVALID_CODE_FORMAT_MESSAGE = "请输入 6 位数字验证码"
WRONG_CODE_MESSAGE = "验证码错误或已失效，请重新获取"
CODE_DEAD_MESSAGE = "验证码错误次数过多，已失效，请重新获取"
ACCOUNT_DISABLED_MESSAGE = "该账号已停用，如有疑问请联系客服"
SMS_LIMIT_MESSAGES = {
    "cooldown": "验证码发送过于频繁，请 %(seconds)s 秒后再试",
    "phone": "该手机号获取验证码次数过多，请 %(minutes)s 分钟后再试",
    "address": "当前网络获取验证码过于频繁，请 %(minutes)s 分钟后再试",
    "device": "当前设备获取验证码过于频繁，请 %(minutes)s 分钟后再试",
    "onetap": "一键登录尝试过于频繁，请 %(minutes)s 分钟后再试",
}


@dataclass(frozen=True)
class CodeSent:
    expires_in: int  # seconds
    resend_in: int  # seconds before another code may be asked for this number


@dataclass(frozen=True)
class PhoneLogin:
    user: User
    created: bool  # True: this login registered the number


def _now() -> datetime:
    return timezone.now()


def _hashed(value: str) -> str:
    return blind_index(value, context=LIMIT_CONTEXT).hex()


def _phone_key(phone: str) -> str:
    return phone_index_of(phone).hex()


def _code_hash(*, phone: str, purpose: str, code: str) -> str:
    return blind_index(f"{purpose}:{phone}:{code}", context=CODE_CONTEXT).hex()


def _checked_phone(phone: str) -> str:
    phone = phone.strip()
    if not PHONE_RE.match(phone):
        raise ApplicationError(INVALID_PHONE_MESSAGE, code="invalid_phone")
    return phone


def _limited(reason: str, seconds: int) -> ApplicationError:
    seconds = max(1, seconds)
    params = {"seconds": seconds} if reason == "cooldown" else {"minutes": max(1, -(-seconds // 60))}
    return ApplicationError(SMS_LIMIT_MESSAGES[reason], code="too_many_codes" if reason != "onetap" else
                            "too_many_onetap", status_code=429, params=params, extra={"retry_after": seconds})


# --- sending ---------------------------------------------------------------------------------------------------------

def _send_limits(*, phone: str, purpose: str, address: str | None,
                 device: str | None) -> list[tuple[str, str, int, int]]:
    """(reason, cache key, window, limit) of every counter a code request counts against."""
    phone_hash = _hashed(phone)
    limits = [("phone", f"sms:p:h:{phone_hash}", HOUR, settings.KAMENG_SMS_PER_PHONE_PER_HOUR),
              ("phone", f"sms:p:d:{phone_hash}", DAY, settings.KAMENG_SMS_PER_PHONE_PER_DAY)]
    if address:
        limits.append(("address", f"sms:a:{_hashed(address_block(address))}", HOUR,
                       settings.KAMENG_SMS_PER_ADDRESS_PER_HOUR))
    if device:
        limits.append(("device", f"sms:d:{_hashed(device)}", HOUR, settings.KAMENG_SMS_PER_DEVICE_PER_HOUR))
    return limits


def _cooldown_key(phone: str, purpose: str) -> str:
    return f"sms:cool:{purpose}:{_hashed(phone)}"


def phone_code_send(*, phone: str, purpose: str = PhoneCodePurpose.LOGIN, address: str | None = None,
                    device: str | None = None) -> CodeSent:
    """Send a new code to `phone` for `purpose`, within the limits; the same answer whether the number has an
    account or not. `address` and `device` are the client's (None: not counted)."""
    phone = _checked_phone(phone)
    risk_check(checkpoint=Checkpoint.SMS, context=RiskContext(ip=address, device_id=device, phone=phone))
    cooldown_key = _cooldown_key(phone, purpose)
    resend = settings.KAMENG_SMS_RESEND_SECONDS
    # The cooldown is taken first and atomically (add() wins once per window): two requests at once send one code.
    if not cache.add(cooldown_key, 1, timeout=resend):
        raise _limited("cooldown", counter_seconds_left(key=cooldown_key, window=resend))
    cache.set(f"{cooldown_key}:ends", time.time() + resend, timeout=resend)
    for reason, key, window, limit in _send_limits(phone=phone, purpose=purpose, address=address, device=device):
        if counter_hit(key=key, window=window) > limit:
            raise _limited(reason, counter_seconds_left(key=key, window=window))

    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    now = _now()
    phone_key = _phone_key(phone)
    with transaction.atomic():
        mine = PhoneCode.objects.filter(phone_key=phone_key, purpose=purpose)
        mine.filter(used_at__isnull=True).update(used_at=now)  # only the newest code counts
        row = PhoneCode.objects.create(phone_key=phone_key, purpose=purpose, created_at=now,
                                       code_hash=_code_hash(phone=phone, purpose=purpose, code=code),
                                       expires_at=now + timedelta(seconds=settings.KAMENG_SMS_CODE_SECONDS))
    try:
        sms_sender().send_code(phone=phone, code=code, minutes=max(1, settings.KAMENG_SMS_CODE_SECONDS // 60))
    except Exception:
        PhoneCode.objects.filter(pk=row.pk).delete()  # never sent: it must not be guessable either
        raise
    return CodeSent(expires_in=settings.KAMENG_SMS_CODE_SECONDS, resend_in=resend)


# --- checking --------------------------------------------------------------------------------------------------------

def _code_take(*, phone: str, purpose: str, code: str) -> None:
    """Use up the number's newest live code if `code` is it; count a wrong try against it otherwise."""
    outcome = WRONG_CODE_MESSAGE
    with transaction.atomic():
        row = (PhoneCode.objects.select_for_update()
               .filter(phone_key=_phone_key(phone), purpose=purpose, used_at__isnull=True)
               .order_by("-created_at", "-pk").first())
        now = _now()
        if row is not None and now < row.expires_at and row.attempts < settings.KAMENG_SMS_CODE_MAX_ATTEMPTS:
            if hmac.compare_digest(row.code_hash, _code_hash(phone=phone, purpose=purpose, code=code)):
                row.used_at = now
                row.save(update_fields=["used_at"])
                return
            row.attempts += 1
            row.save(update_fields=["attempts"])
            if row.attempts >= settings.KAMENG_SMS_CODE_MAX_ATTEMPTS:
                outcome = CODE_DEAD_MESSAGE
    # Committed above: the wrong try counts even though the request fails.
    raise ApplicationError(outcome, code="code_dead" if outcome == CODE_DEAD_MESSAGE else "invalid_code")


def _user_for_phone(*, phone: str, address: str | None, device: str | None = None) -> PhoneLogin:
    """The number's account, or a new one (a generated username, no password: it logs in by phone until it sets
    one). Registering counts against the address's hourly registrations like any other. Risk control's login (or
    register) checkpoint decides first, the phone proved."""
    index = phone_index_of(phone)
    user = User.objects.filter(phone_index=index).first()
    if user is None:
        register_risk_check(phone=phone, address=address, device=device, is_sms_verified=True)
    else:
        login_risk_check(user=user, phone=phone, address=address, device=device, is_sms_verified=True)
    if user is None:
        lock = registration_take(address=address)
        if lock is not None:
            raise ApplicationError(LOCK_MESSAGES["registration"], code="too_many_registrations", status_code=429,
                                   params={"minutes": lock.minutes}, extra={"retry_after": lock.seconds})
        user = User(username=phone_account_username(), phone=phone, phone_index=index)
        user.password = make_password(None)  # set_unusable_password(), without the User instance's bookkeeping
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:  # the same number registered a moment ago by another request
            existing = User.objects.filter(phone_index=index).first()
            if existing is None:
                raise
            user = existing
        else:
            return PhoneLogin(user=user, created=True)
    if not user.is_active:
        raise ApplicationError(ACCOUNT_DISABLED_MESSAGE, code="account_disabled", status_code=403)
    return PhoneLogin(user=user, created=False)


def phone_login_with_code(*, phone: str, code: str, purpose: str = PhoneCodePurpose.LOGIN,
                          address: str | None = None, device: str | None = None) -> PhoneLogin:
    """Log in (or register) `phone` with the code it received. The caller logs the user into its session."""
    phone = _checked_phone(phone)
    code = code.strip()
    if not CODE_RE.match(code):
        raise ApplicationError(INVALID_CODE_FORMAT_MESSAGE, code="invalid_code_format")
    lock = registration_lock(address=address)
    if lock is not None and not User.objects.filter(phone_index=phone_index_of(phone)).exists():
        # Said before the code is used up, so that the code still works once the hour is over.
        raise ApplicationError(LOCK_MESSAGES["registration"], code="too_many_registrations", status_code=429,
                               params={"minutes": lock.minutes}, extra={"retry_after": lock.seconds})
    _code_take(phone=phone, purpose=purpose, code=code)
    return _user_for_phone(phone=phone, address=address, device=device)


def phone_login_with_onetap(*, token: str, address: str | None = None, device: str | None = None) -> PhoneLogin:
    """Log in (or register) the number a carrier's one-tap token vouches for (kameng.accounts.onetap)."""
    if address:
        key = f"onetap:a:{_hashed(address_block(address))}"
        if counter_hit(key=key, window=HOUR) > settings.KAMENG_ONETAP_PER_ADDRESS_PER_HOUR:
            raise _limited("onetap", counter_seconds_left(key=key, window=HOUR))
    phone = onetap_phone_for_token(token=token)
    if not PHONE_RE.match(phone):
        raise ApplicationError(INVALID_PHONE_MESSAGE, code="invalid_phone")
    return _user_for_phone(phone=phone, address=address, device=device)


def phone_codes_purge() -> int:
    """Remove code rows older than KEEP_CODES_FOR; return how many went."""
    deleted, _ = PhoneCode.objects.filter(created_at__lt=_now() - KEEP_CODES_FOR).delete()
    return deleted
