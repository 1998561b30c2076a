"""Writes about users: registration (throttled per client address, answering taken and reserved names alike), and
real-name verification (实名) with its staff reset; the register and login checkpoints of risk control
(`register_risk_check`, `login_risk_check`: kameng.risk.engine), which every way in goes through."""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from kameng.accounts.identity import parse_id_number, parse_name
from kameng.accounts.models import RealName, RealNameStatus, User
from kameng.accounts.selectors import identity_index_of, phone_index_of
from kameng.accounts.throttle import (
    LOCK_MESSAGES,
    Lock,
    registration_lock,
    registration_refused,
    registration_take,
)
from kameng.accounts.verification import IdentityProviderUnavailableError, VerificationOutcome, identity_provider
from kameng.core.errors import ApplicationError, ConflictError
from kameng.risk.engine import RiskContext, RiskResult, risk_check
from kameng.risk.models import Checkpoint

logger = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{2,29}$")
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
# An account registered by phone gets a generated username: the number itself lives only encrypted. The "-"
# cannot occur in a chosen username (USERNAME_RE), so the two never collide.
PHONE_USERNAME_PREFIX = "m-"
# Names that would pass for the shop itself or its staff. Refused with the same words as a taken name, which is
# also why a refusal says nothing about whether an account exists.
RESERVED_USERNAMES = frozenset({
    "admin", "administrator", "root", "system", "sysadmin", "staff", "support", "service", "kefu", "official",
    "guanfang", "kameng", "webmaster", "postmaster", "security", "operator", "manager", "test", "null", "none",
})


def phone_account_username() -> str:
    return f"{PHONE_USERNAME_PREFIX}{secrets.token_hex(6)}"


def _unavailable(*, phone: str | None, address: str | None) -> ApplicationError:
    """The same answer for a taken name and a reserved one, with the status of any other form error: nothing here
    confirms that an account exists (a phone number can still be probed, slowly: see registration_refused)."""
    registration_refused(address=address)
    if phone is not None:
        return ApplicationError("该手机号不可用，请换一个", code="login_unavailable")
    return ApplicationError("该用户名不可用，请换一个", code="login_unavailable")


def _too_many_registrations(lock: Lock) -> ApplicationError:
    return ApplicationError(LOCK_MESSAGES["registration"], code="too_many_registrations", status_code=429,
                            params={"minutes": lock.minutes}, extra={"retry_after": lock.seconds})


def register_risk_check(*, phone: str | None, address: str | None, device: str | None,
                        is_sms_verified: bool = False) -> RiskResult:
    """The register checkpoint: by password (user_register) and by phone (kameng.accounts.phone_login)."""
    return risk_check(checkpoint=Checkpoint.REGISTER, context=RiskContext(
        ip=address, device_id=device, phone=phone, is_sms_verified=is_sms_verified))


def login_risk_check(*, user: User | None, phone: str | None, address: str | None, device: str | None,
                     is_sms_verified: bool = False) -> RiskResult:
    """The login checkpoint: password logins (kameng.accounts.forms.ThrottledLoginMixin, before the password is
    checked, so attempts count) and phone logins (is_sms_verified: a `require_sms` rule is satisfied). Raises
    RiskBlockedError or SmsRequiredError (403)."""
    return risk_check(checkpoint=Checkpoint.LOGIN, context=RiskContext(
        user_id=user.pk if user is not None else None, ip=address, device_id=device,
        phone=phone or (str(user.phone) if user is not None and user.phone else None),
        is_sms_verified=is_sms_verified))


def user_register(*, login: str, password: str, address: str | None = None, device: str | None = None) -> User:
    """Register with a username (3–30 letters, digits, _) or a mainland mobile number, plus a password.

    Usernames are case-insensitive: stored lower-cased, and one differing only in case from an existing account
    (staff may have created mixed-case ones in the admin) is taken. `address` is the client's (None: not from the
    web, unthrottled): it may make KAMENG_REGISTRATIONS_PER_ADDRESS_PER_HOUR accounts an hour
    (kameng.accounts.throttle). `device` is the client's (kameng.core.device.risk_device_id), for risk control's
    register checkpoint, which decides once the login is well formed.
    """
    lock = registration_lock(address=address)
    if lock is not None:
        raise _too_many_registrations(lock)
    login = login.strip()
    phone: str | None = None
    if login.isdigit():
        if not PHONE_RE.match(login):
            raise ApplicationError("手机号格式不正确（11 位中国大陆手机号）", code="invalid_phone")
        phone = login
        user = User(username=phone_account_username(), phone=phone, phone_index=phone_index_of(phone))
    elif USERNAME_RE.match(login):
        user = User(username=login.lower())
    else:
        raise ApplicationError("用户名需以字母开头，3–30 位字母、数字或下划线", code="invalid_username")
    register_risk_check(phone=phone, address=address, device=device)
    try:
        validate_password(password, user=user)
    except ValidationError as error:
        # Chinese sentences follow each other without a space; English ones with one.
        message = " ".join(error.messages).replace("。 ", "。")
        raise ApplicationError(message, code="weak_password") from error

    user.set_password(password)
    taken = (User.objects.filter(phone_index=user.phone_index) if phone is not None
             else User.objects.filter(username__iexact=user.username))
    if taken.exists() or (phone is None and user.username in RESERVED_USERNAMES):
        raise _unavailable(phone=phone, address=address)
    lock = registration_take(address=address)
    if lock is not None:
        raise _too_many_registrations(lock)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as error:  # registered by someone else a moment ago
        raise _unavailable(phone=phone, address=address) from error
    return user


# --- real name (实名) ---------------------------------------------------------------------------------------------
# Lock the account's row, record the attempt, commit; call the provider with no transaction open; then lock again and
# record the outcome. A provider that gives no answer leaves the row as it was (and the attempt uncounted).

# A verification still "in progress" after this long was cut short (the process died during the call): the next
# attempt may start.
REALNAME_PENDING_STALE_SECONDS = 120

REALNAME_REFUSALS: dict[str, tuple[str, int]] = {
    VerificationOutcome.MISMATCH: ("姓名与身份证号码不一致，请核对后重试", 400),
    VerificationOutcome.NO_RECORD: ("未查询到该身份证号码的登记信息，请核对后重试", 400),
    VerificationOutcome.INVALID_ID_NUMBER: ("身份证号码无效，请核对后重试", 400),
    VerificationOutcome.INVALID_NAME: ("姓名格式不被认证服务接受，请按身份证上的姓名填写", 400),
    "id_number_taken": ("该身份证号码已被其他账号实名认证", 409),
}
REALNAME_TOO_MANY_ATTEMPTS = "今日实名认证尝试次数已用完，请明天再试"


@dataclass(frozen=True)
class _Begun:
    attempt_day: date
    refusal: str | None  # set when the attempt was refused before asking the provider (counted all the same)


def _refusal(code: str) -> ApplicationError:
    message, status = REALNAME_REFUSALS[code]
    return ApplicationError(message, code=f"realname_{code}", status_code=status)


def _seconds_until_tomorrow(now: datetime) -> int:
    tomorrow = datetime.combine(timezone.localdate(now) + timedelta(days=1), time.min,
                                tzinfo=timezone.get_current_timezone())
    return max(1, int((tomorrow - now).total_seconds()))


def _identity_slots_taken(*, index: bytes, user_id: int) -> set[int]:
    return {slot for slot in RealName.objects.filter(id_number_index=index, status=RealNameStatus.VERIFIED)
            .exclude(user_id=user_id).values_list("identity_slot", flat=True) if slot is not None}


def _realname_begin(*, user_id: int, index: bytes, now: datetime) -> _Begun:
    today = timezone.localdate(now)
    RealName.objects.get_or_create(user_id=user_id)
    with transaction.atomic():
        real_name = RealName.objects.select_for_update().get(user_id=user_id)
        if real_name.status == RealNameStatus.VERIFIED:
            raise ConflictError("您已完成实名认证", code="realname_already_verified")
        if (real_name.status == RealNameStatus.PENDING and real_name.pending_since is not None
                and now - real_name.pending_since < timedelta(seconds=REALNAME_PENDING_STALE_SECONDS)):
            raise ConflictError("实名认证正在进行中，请稍候再试", code="realname_in_progress")
        if real_name.attempts_day != today:
            real_name.attempts_day, real_name.attempts = today, 0
        if real_name.attempts >= settings.KAMENG_REALNAME_ATTEMPTS_PER_DAY:
            raise ApplicationError(REALNAME_TOO_MANY_ATTEMPTS, code="realname_too_many_attempts", status_code=429,
                                   extra={"retry_after": _seconds_until_tomorrow(now)})
        real_name.attempts += 1
        # Asked before the provider (each call is billed) and counted as an attempt, so that finding out which
        # numbers are verified here is as slow as guessing.
        if len(_identity_slots_taken(index=index, user_id=user_id)) >= settings.KAMENG_REALNAME_ACCOUNTS_PER_IDENTITY:
            real_name.status, real_name.rejection_code = RealNameStatus.REJECTED, "id_number_taken"
            real_name.save()
            return _Begun(attempt_day=today, refusal="id_number_taken")
        real_name.status, real_name.pending_since = RealNameStatus.PENDING, now
        real_name.save()
    return _Begun(attempt_day=today, refusal=None)


def _realname_abandon(*, user_id: int, attempt_day: date) -> None:
    """The provider gave no answer: back to how it was, the attempt not counted."""
    with transaction.atomic():
        real_name = RealName.objects.select_for_update().get(user_id=user_id)
        if real_name.status == RealNameStatus.PENDING:
            real_name.status = RealNameStatus.REJECTED if real_name.rejection_code else RealNameStatus.UNVERIFIED
            real_name.pending_since = None
        if real_name.attempts_day == attempt_day and real_name.attempts > 0:
            real_name.attempts -= 1
        real_name.save()


def _realname_verified(*, real_name: RealName, name: str, id_number: str, index: bytes, provider: str,
                       request_id: str, now: datetime) -> bool:
    """Take a free slot of the identity for `real_name` (locked); False if every slot is taken."""
    limit = settings.KAMENG_REALNAME_ACCOUNTS_PER_IDENTITY
    for _ in range(limit):
        taken = _identity_slots_taken(index=index, user_id=real_name.user_id)
        free = [slot for slot in range(1, limit + 1) if slot not in taken]
        if not free:
            return False
        real_name.status, real_name.rejection_code = RealNameStatus.VERIFIED, ""
        real_name.name, real_name.id_number, real_name.id_number_index = name, id_number, index
        real_name.identity_slot, real_name.verified_at, real_name.pending_since = free[0], now, None
        real_name.provider, real_name.provider_request_id = provider, request_id
        try:
            with transaction.atomic():  # a savepoint: another account took the slot a moment ago
                real_name.save()
            return True
        except IntegrityError:
            continue
    return False


@sensitive_variables("name", "id_number", "person_name", "number")  # hidden from Django's error reports
def realname_verify(*, user_id: int, name: str, id_number: str) -> RealName:
    """Verify that `name` goes with `id_number` (real-name, 实名) for the account `user_id`: buyers, and later a
    supplier's legal person, through the same flow.

    The input is checked first (name format, the number's format, check digit, birth date, province); then
    KAMENG_REALNAME_ATTEMPTS_PER_DAY attempts a day (429 past them), an ID number already verified by
    KAMENG_REALNAME_ACCOUNTS_PER_IDENTITY other accounts (409), and the provider's answer. Raises ApplicationError
    for every refusal; IdentityProviderUnavailableError (503, retryable) when the provider gave no answer, with nothing
    recorded. Returns the verified row.
    """
    person_name = parse_name(name)
    now = timezone.now()
    number = parse_id_number(id_number, today=timezone.localdate(now)).number
    index = identity_index_of(number)
    begun = _realname_begin(user_id=user_id, index=index, now=now)
    if begun.refusal is not None:
        logger.info("real-name verification of user %s refused: %s", user_id, begun.refusal)
        raise _refusal(begun.refusal)

    provider = identity_provider()
    try:
        result = provider.verify(name=person_name, id_number=number)
    except IdentityProviderUnavailableError as error:
        logger.warning("real-name verification of user %s: %s gave no answer (%s)", user_id, provider.name,
                       error.reason)
        _realname_abandon(user_id=user_id, attempt_day=begun.attempt_day)
        raise
    except Exception:
        _realname_abandon(user_id=user_id, attempt_day=begun.attempt_day)
        raise

    refusal: str | None = None
    with transaction.atomic():
        real_name = RealName.objects.select_for_update().get(user_id=user_id)
        if result.outcome == VerificationOutcome.MATCH:
            if not _realname_verified(real_name=real_name, name=person_name, id_number=number, index=index,
                                      provider=result.provider, request_id=result.request_id, now=timezone.now()):
                refusal = "id_number_taken"
        else:
            refusal = str(result.outcome)
        if refusal is not None:
            real_name.status, real_name.rejection_code, real_name.pending_since = (
                RealNameStatus.REJECTED, refusal, None)
            # A slot lost to another account left its values on this instance: a refusal keeps none of them.
            real_name.name = real_name.id_number = real_name.id_number_index = None
            real_name.identity_slot, real_name.verified_at = None, None
            real_name.provider, real_name.provider_request_id = result.provider, result.request_id
            real_name.save()
    logger.info("real-name verification of user %s by %s: %s", user_id, result.provider, refusal or "verified")
    if refusal is not None:
        raise _refusal(refusal)
    return real_name


def realname_reset(*, user_id: int) -> None:
    """Staff: forget the account's real name (its slot of the identity is freed) and today's attempts, so that it
    can verify again — a person who verified the wrong account, or a name that changed."""
    with transaction.atomic():
        updated = RealName.objects.filter(user_id=user_id).update(
            status=RealNameStatus.UNVERIFIED, name=None, id_number=None, id_number_index=None, identity_slot=None,
            provider="", provider_request_id="", rejection_code="", verified_at=None, pending_since=None,
            attempts=0, attempts_day=None, updated_at=timezone.now())
    logger.info("real name of user %s reset (%s row)", user_id, updated)
