"""The payment PIN (支付密码) and password-free payment (免密支付) of wallet payments.

Rules:
- The PIN is optional. A buyer without one pays from the wallet as before: the login session is the authentication
  (the wallet page invites them to set one). Once a PIN is set, a wallet payment whose total is at or below the
  buyer's password-free limit goes without it, and one above it needs it: total == limit → no PIN, limit + ¥0.01 →
  PIN. The limit is 0 (password-free payment off) until the buyer sets one, between 0 and KAMENG_PASSWORD_FREE_MAX
  (set by staff; a limit above a lowered cap counts as the cap). Setting or raising the limit takes the PIN;
  lowering it does not.
- A PIN is exactly 6 digits, not a trivial one (one digit repeated, a run such as 123456 or 987654, a repeated pair
  or triple such as 121212 or 123123). It is stored hashed with Django's password hashers and never logged. The
  first PIN takes the login password (an account without one — a phone-only account — may set it within
  KAMENG_PAYMENT_PIN_FRESH_LOGIN_SECONDS of logging in; SMS re-authentication replaces that once SMS login exists);
  changing it takes the old PIN; staff reset it in the back office (the buyer then sets a new one).
- Lockout: KAMENG_PAYMENT_PIN_MAX_FAILURES wrong PINs in a row (per account, from any address; a wrong login
  password when setting the first PIN counts too) lock the PIN for KAMENG_PAYMENT_PIN_LOCK_SECONDS. A correct PIN
  clears the count; a lock that ran out starts it afresh. The count is a column of the user row, updated under the
  row's lock: each try is counted before its PIN is checked (the hashing runs outside the lock), so tries made at
  the same moment cannot get past the limit between them.

Where it is enforced: `wallet_payment_authorize`, called by the purchase service (kameng.purchases) and the order
payment from the wallet (kameng.payments.services) before any order, payment or journal is written, so a refused
PIN leaves nothing behind. The settings live on the user row so that the request's user, loaded anyway, answers
"does this payment need a PIN" without a query (`pin_settings_of`); without it, one small query does.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.utils import timezone

from kameng.accounts.models import User
from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.core.money import ZERO, MoneyError, money, parse_amount

PIN_RE = re.compile(r"[0-9]{6}", re.ASCII)
ZERO_RE = re.compile(r"0+(?:\.0{0,2})?", re.ASCII)  # a limit of 0 turns password-free payment off


@dataclass(frozen=True)
class PinSettings:
    """What decides whether a wallet payment needs the PIN."""

    has_pin: bool
    password_free_limit: Decimal

    def needs_pin(self, amount: Decimal) -> bool:
        return self.has_pin and amount > effective_password_free_limit(self.password_free_limit)


NO_PIN = PinSettings(has_pin=False, password_free_limit=ZERO)


class PinRequiredError(ApplicationError):
    """The payment needs the PIN and none was given."""

    status_code = 403


class PinWrongError(ApplicationError):
    status_code = 400


class PinLockedError(ApplicationError):
    status_code = 429


def password_free_cap() -> Decimal:
    return money(settings.KAMENG_PASSWORD_FREE_MAX)


def effective_password_free_limit(limit: Decimal) -> Decimal:
    return max(min(limit, password_free_cap()), ZERO)


def pin_settings_of(user: User) -> PinSettings:
    """From a user row already loaded (the request's user): no query."""
    return PinSettings(has_pin=bool(user.payment_pin), password_free_limit=user.password_free_limit)


def pin_settings_for(*, user_id: int) -> PinSettings:
    row = User.objects.filter(pk=user_id).values_list("payment_pin", "password_free_limit").first()
    if row is None:
        return NO_PIN
    return PinSettings(has_pin=bool(row[0]), password_free_limit=row[1])


def pin_locked_until(user: User) -> datetime | None:
    """When the user's PIN unlocks, if it is locked now."""
    locked_until = user.payment_pin_locked_until
    return locked_until if locked_until is not None and locked_until > timezone.now() else None


def _locked_error(locked_until: datetime) -> PinLockedError:
    seconds = max(1, math.ceil((locked_until - timezone.now()).total_seconds()))
    unlocks_at = timezone.localtime(locked_until).strftime("%H:%M")
    return PinLockedError("支付密码错误次数过多，已锁定，请在 %(unlocks_at)s 后再试（约 %(minutes)s 分钟）",
                          code="pin_locked", params={"unlocks_at": unlocks_at, "minutes": math.ceil(seconds / 60)},
                          extra={"retry_after": seconds, "unlocks_at": locked_until.isoformat()})


def _wrong_error(tries_left: int, *, what: str = "支付密码") -> PinWrongError:
    message = ("支付密码错误，还可以再试 %(tries_left)s 次" if what == "支付密码"
               else "登录密码错误，还可以再试 %(tries_left)s 次")
    return PinWrongError(message, code="pin_wrong" if what == "支付密码" else "password_wrong",
                         params={"tries_left": tries_left}, extra={"tries_left": tries_left})


def _check_shape(pin: str) -> None:
    if not PIN_RE.fullmatch(pin):
        raise ApplicationError("支付密码为 6 位数字", code="pin_invalid")


@dataclass(frozen=True)
class _Try:
    payment_pin: str  # the hashes the try is checked against
    password: str
    failures: int  # counting this try
    new_lock: datetime | None  # set by this try, the last one allowed: lifted if it turns out right


def _count_a_try(user_id: int) -> _Try:
    """Count one try under the row's lock, before it is checked. Raises PinLockedError while the PIN is locked."""
    now = timezone.now()
    with transaction.atomic():
        user = (User.objects.select_for_update()
                .only("pk", "password", "payment_pin", "payment_pin_failures", "payment_pin_locked_until")
                .filter(pk=user_id).first())
        if user is None:
            raise NotFoundError("用户不存在", code="user_not_found")
        locked_until = user.payment_pin_locked_until
        if locked_until is not None and locked_until > now:
            refused_until: datetime | None = locked_until
        else:
            refused_until = None
            failures = (0 if locked_until is not None else user.payment_pin_failures) + 1  # a lock ran out: afresh
            new_lock = (now + timedelta(seconds=settings.KAMENG_PAYMENT_PIN_LOCK_SECONDS)
                        if failures >= settings.KAMENG_PAYMENT_PIN_MAX_FAILURES else None)
            User.objects.filter(pk=user_id).update(payment_pin_failures=failures, payment_pin_locked_until=new_lock)
    if refused_until is not None:  # raised after commit: nothing to roll back, but nothing was counted either
        raise _locked_error(refused_until)
    return _Try(payment_pin=user.payment_pin, password=user.password, failures=failures, new_lock=new_lock)


def _tried(user_id: int, attempt: _Try, *, is_correct: bool, what: str = "支付密码") -> None:
    """The outcome of a counted try: a correct one clears the count (and the lock the try set), a wrong one says
    how many tries are left, or that the PIN is now locked."""
    if is_correct:
        User.objects.filter(pk=user_id).update(payment_pin_failures=0, payment_pin_locked_until=None)
        return
    if attempt.new_lock is not None:
        raise _locked_error(attempt.new_lock)
    raise _wrong_error(max(settings.KAMENG_PAYMENT_PIN_MAX_FAILURES - attempt.failures, 0), what=what)


def payment_pin_verify(*, user_id: int, pin: str) -> None:
    """Check the user's PIN, counting the try (see the module docstring). Raises PinWrongError (tries left in
    `extra`), PinLockedError (`retry_after`, `unlocks_at`), or an error for a PIN not shaped like one (not
    counted: it cannot be right)."""
    _check_shape(pin)
    attempt = _count_a_try(user_id)
    _tried(user_id, attempt, is_correct=bool(attempt.payment_pin) and check_password(pin, attempt.payment_pin))


def wallet_payment_authorize(*, user_id: int, amount: Decimal, pin: str | None,
                             pin_settings: PinSettings | None = None) -> None:
    """Allow a wallet payment of `amount`, or raise: PinRequiredError (403 `pin_required`) when the payment needs
    the PIN and none was given, PinWrongError (400 `pin_wrong`), PinLockedError (429 `pin_locked`).

    `pin_settings` are the buyer's as read from their row in this request (`pin_settings_of(request.user)`), which
    saves the query; without them they are read here. Call it before writing anything for the payment.
    """
    if pin_settings is None:
        pin_settings = pin_settings_for(user_id=user_id)
    if not pin_settings.needs_pin(amount):
        return
    if not pin:
        limit = effective_password_free_limit(pin_settings.password_free_limit)
        raise PinRequiredError(
            "本次支付 ¥%(amount)s 超过免密支付额度 ¥%(limit)s，请输入 6 位支付密码" if limit > ZERO
            else "请输入 6 位支付密码", code="pin_required",
            params={"amount": money(amount), "limit": limit} if limit > ZERO else None,
            extra={"amount": str(money(amount)), "password_free_limit": str(limit)})
    payment_pin_verify(user_id=user_id, pin=pin)


def _check_strength(pin: str) -> None:
    _check_shape(pin)
    digits = [int(character) for character in pin]
    steps = {b - a for a, b in itertools.pairwise(digits)}
    is_run = steps in ({1}, {-1})
    if len(set(pin)) == 1 or is_run or pin[:2] * 3 == pin or pin[:3] * 2 == pin:
        raise ApplicationError("支付密码过于简单（如 111111、123456、121212），请换一个", code="pin_too_simple")


def payment_pin_set(*, user_id: int, new_pin: str, password: str = "", old_pin: str = "",
                    logged_in_at: datetime | None = None) -> None:
    """Set the user's first PIN (with the login password; an account without one within
    KAMENG_PAYMENT_PIN_FRESH_LOGIN_SECONDS of `logged_in_at`) or change it (with the old PIN). Wrong passwords and
    wrong old PINs count toward the PIN's lock."""
    _check_strength(new_pin)
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise NotFoundError("用户不存在", code="user_not_found")
    if user.payment_pin:
        if not old_pin:
            raise ApplicationError("请输入原支付密码", code="pin_required")
        payment_pin_verify(user_id=user_id, pin=old_pin)
    elif user.has_usable_password():
        if not password:
            raise ApplicationError("请输入登录密码", code="password_required")
        attempt = _count_a_try(user_id)
        _tried(user_id, attempt, is_correct=check_password(password, attempt.password), what="登录密码")
    else:
        fresh_since = timezone.now() - timedelta(seconds=settings.KAMENG_PAYMENT_PIN_FRESH_LOGIN_SECONDS)
        if logged_in_at is None or logged_in_at < fresh_since:
            raise ApplicationError("为了您的资金安全，请重新登录后 %(minutes)s 分钟内设置支付密码",
                                   code="login_not_fresh", status_code=403,
                                   params={"minutes": settings.KAMENG_PAYMENT_PIN_FRESH_LOGIN_SECONDS // 60})
    User.objects.filter(pk=user_id).update(payment_pin=make_password(new_pin), payment_pin_failures=0,
                                           payment_pin_locked_until=None)


def password_free_limit_set(*, user_id: int, limit_text: str, pin: str = "") -> Decimal:
    """Set the user's password-free limit (0 turns it off). Raising it takes the PIN; lowering it does not."""
    cap = password_free_cap()
    text = str(limit_text).strip()
    if text.startswith("-"):  # 0 is allowed (it turns password-free payment off): "must be more than 0" would mislead
        raise ApplicationError("金额不能为负数", code="invalid_amount")
    try:
        limit = ZERO if ZERO_RE.fullmatch(text) else parse_amount(text, maximum=cap)
    except MoneyError as error:
        raise ApplicationError(error.template, params=error.params, code="invalid_amount") from error
    current = pin_settings_for(user_id=user_id)
    if not current.has_pin:
        raise ConflictError("请先设置支付密码，再开通免密支付", code="pin_not_set")
    if limit > current.password_free_limit:
        if not pin:
            raise ApplicationError("提高免密支付额度需要输入支付密码", code="pin_required", status_code=403)
        payment_pin_verify(user_id=user_id, pin=pin)
    User.objects.filter(pk=user_id).update(password_free_limit=limit)
    return limit


def payment_pin_reset(*, user_id: int) -> None:
    """Staff: clear the user's PIN, its lock and the password-free limit; the buyer pays as one without a PIN until
    they set a new one."""
    User.objects.filter(pk=user_id).update(payment_pin="", payment_pin_failures=0, payment_pin_locked_until=None,
                                           password_free_limit=ZERO)
