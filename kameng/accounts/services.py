"""Writes about users: registration (throttled per client address, answering taken and reserved names alike)."""

from __future__ import annotations

import re
import secrets

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from kameng.accounts.models import User
from kameng.accounts.selectors import phone_index_of
from kameng.accounts.throttle import (
    LOCK_MESSAGES,
    Lock,
    registration_lock,
    registration_refused,
    registration_take,
)
from kameng.core.errors import ApplicationError

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


def user_register(*, login: str, password: str, address: str | None = None) -> User:
    """Register with a username (3–30 letters, digits, _) or a mainland mobile number, plus a password.

    Usernames are case-insensitive: stored lower-cased, and one differing only in case from an existing account
    (staff may have created mixed-case ones in the admin) is taken. `address` is the client's (None: not from the
    web, unthrottled): it may make KAMENG_REGISTRATIONS_PER_ADDRESS_PER_HOUR accounts an hour
    (kameng.accounts.throttle).
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
