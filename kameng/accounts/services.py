"""Writes about users: registration."""

from __future__ import annotations

import re
import secrets

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from kameng.accounts.models import User
from kameng.accounts.selectors import phone_index_of
from kameng.core.errors import ApplicationError

USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{2,29}$")
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
# An account registered by phone gets a generated username: the number itself lives only encrypted. The "-"
# cannot occur in a chosen username (USERNAME_RE), so the two never collide.
PHONE_USERNAME_PREFIX = "m-"


def phone_account_username() -> str:
    return f"{PHONE_USERNAME_PREFIX}{secrets.token_hex(6)}"


def user_register(*, login: str, password: str) -> User:
    """Register with a username (3–30 letters, digits, _) or a mainland mobile number, plus a password.

    Usernames are case-insensitive: stored lower-cased, and one differing only in case from an existing account
    (staff may have created mixed-case ones in the admin) is taken.
    """
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
        raise ApplicationError(" ".join(error.messages), code="weak_password") from error

    user.set_password(password)
    try:
        with transaction.atomic():
            taken = (User.objects.filter(phone_index=user.phone_index) if phone is not None
                     else User.objects.filter(username__iexact=user.username))
            if taken.exists():
                raise ApplicationError("该用户名或手机号已注册", code="already_registered", status_code=409)
            user.save()
    except IntegrityError as error:
        raise ApplicationError("该用户名或手机号已注册", code="already_registered", status_code=409) from error
    return user
