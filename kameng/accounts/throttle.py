"""Throttling of logins and registrations: counters in the cache (Redis in production, shared by every web node).

Logins. Failures are counted under one name per account, whichever identifier was typed (the username in any case,
the phone number): the account's id, or, for a login no account answers to, the folded login itself, so unknown
and known logins behave alike. Every cache key holds a keyed blind index, never a username or a phone number.

- Per account and client address (IPv4 per address, IPv6 per /64): KAMENG_LOGIN_MAX_FAILURES (5) wrong passwords
  lock that pair for KAMENG_LOGIN_LOCK_SECONDS. Someone guessing from one address locks out only themselves: the
  owner, and staff at /admin/, log in from their own addresses as before.
- Per account, from anywhere: past KAMENG_LOGIN_ACCOUNT_BACKOFF_AFTER failures in a day each further failure makes
  the account wait before the next try, doubling up to KAMENG_LOGIN_ACCOUNT_BACKOFF_MAX_SECONDS. A guesser spread
  over many addresses is slowed to a few tries an hour; the owner is never locked out for longer than one wait,
  and not at all from an address they logged in from before (remembered for KNOWN_ADDRESS_SECONDS), which is what
  keeps staff able to reach the back office while a storefront attacker hammers their account. Staff accounts are
  meant to get a second factor with the risk-control issue; until then this backoff is what slows a distributed
  guess of a staff password.
- Per client address: KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS (300) failures over any accounts lock the address.
  Behind a carrier-grade NAT or an office gateway many people share one address and a locked address refuses them
  all, so this sits far above what people sharing an address get wrong by accident.

A correct password clears the pair's count and remembers the address; it does not clear the account's count (the
owner logging in says nothing about the guesses from elsewhere).

Every try is counted BEFORE its password is checked (`login_take`), atomically (cache.add/incr: Redis, or locmem
under its lock), and refused when that count passes a limit; a try that turns out right gives its counts back
(`login_succeeded`). So however many tries arrive at once, no more passwords are checked than the limits allow —
counting after the (slow) check would let every try already in flight through. Past the account's threshold only
one try per wait is let through: the turn after a wait goes to the one try that claims it first.

Registrations. KAMENG_REGISTRATIONS_PER_ADDRESS_PER_HOUR accounts per client address (per /64), and
KAMENG_REGISTRATION_REFUSALS_PER_ADDRESS_PER_HOUR "name not available" answers, so that neither making accounts in
bulk nor probing which names exist is quick.

Windows are fixed: they start at the first count and the lock lasts until the window ends.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext

from kameng.accounts.models import User
from kameng.core.counters import counter_hit, counter_seconds_left
from kameng.core.crypto import blind_index
from kameng.core.http import address_block

THROTTLE_CONTEXT = "accounts.login.throttle"
ACCOUNT_WINDOW_SECONDS = 24 * 3600
KNOWN_ADDRESS_SECONDS = 30 * 24 * 3600
REGISTRATION_WINDOW_SECONDS = 3600
# An account's wait is kept this long past its end (its value says when it ends): the claim of the turn after it is
# keyed by that value, so the key must not vanish while tries may still claim (claims live TURN_CLAIM_SECONDS).
WAIT_KEPT_SECONDS = 120
TURN_CLAIM_SECONDS = 60
# Where the authentication backend leaves the lock that refused a try, on the request (for the login forms' message).
LOGIN_LOCK_ATTRIBUTE = "kameng_login_lock"


@dataclass(frozen=True)
class Lock:
    """Why further tries are refused (a message template of the storefront's catalog) and for how long."""

    seconds: int
    reason: str

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.seconds / 60))

    def message(self) -> str:
        """In the active language: why, and how long to wait (seconds under a minute, minutes otherwise)."""
        if self.seconds < 60:
            return gettext(LOCK_MESSAGES_IN_SECONDS[self.reason]) % {"seconds": self.seconds}
        return gettext(LOCK_MESSAGES[self.reason]) % {"minutes": self.minutes}


LOCK_MESSAGES = {
    "login": "登录失败次数过多，请 %(minutes)s 分钟后再试",
    "account": "该账号近期在多处登录失败，为保护账号安全，请 %(minutes)s 分钟后再试",
    "registration": "当前网络注册过于频繁，请 %(minutes)s 分钟后再试",
}
LOCK_MESSAGES_IN_SECONDS = {
    "login": "登录失败次数过多，请 %(seconds)s 秒后再试",
    "account": "该账号近期在多处登录失败，为保护账号安全，请 %(seconds)s 秒后再试",
    "registration": "当前网络注册过于频繁，请 %(seconds)s 秒后再试",
}


def _hashed(value: str) -> str:
    return blind_index(value, context=THROTTLE_CONTEXT).hex()


def login_account(*, login: str, user: User | None) -> str:
    """The one name an account's failures are counted under (hashed), whichever identifier found `user`."""
    return _hashed(f"user:{user.pk}" if user is not None else "login:" + login.strip().casefold())


# --- fixed windows ----------------------------------------------------------------------------------------------

def _count(key: str) -> int:
    return int(cache.get(key) or 0)


# --- logins ------------------------------------------------------------------------------------------------------

def _pair_key(account: str, address: str | None) -> str:
    return f"login-fail:p:{account}:{_hashed(address_block(address)) if address else '-'}"


def _account_key(account: str) -> str:
    return f"login-fail:a:{account}"


def _account_wait_key(account: str) -> str:
    return f"login-wait:a:{account}"


def _address_key(address: str) -> str:
    return f"login-fail:ip:{address_block(address)}"


def _known_address_key(account: str, address: str) -> str:
    return f"login-known:{account}:{_hashed(address_block(address))}"


def login_lock(*, account: str, address: str | None) -> Lock | None:
    """The lock in force for a login to `account` (from `login_account`) from `address`, if any."""
    window = settings.KAMENG_LOGIN_LOCK_SECONDS
    if address and _count(_address_key(address)) >= settings.KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS:
        return Lock(seconds=counter_seconds_left(key=_address_key(address), window=window), reason="login")
    pair = _pair_key(account, address)
    if _count(pair) >= settings.KAMENG_LOGIN_MAX_FAILURES:
        return Lock(seconds=counter_seconds_left(key=pair, window=window), reason="login")
    waits_until = cache.get(_account_wait_key(account))
    if waits_until is not None and float(waits_until) > time.time():
        if address and cache.get(_known_address_key(account, address)):
            return None
        return Lock(seconds=max(1, math.ceil(float(waits_until) - time.time())), reason="account")
    return None


@dataclass(frozen=True)
class LoginAttempt:
    """One try at a password, counted in advance by `login_take`; end it with `login_failed` or `login_succeeded`.

    `lock` is set when the try was refused (nothing is left counted then, and no password may be checked)."""

    account: str
    address: str | None
    lock: Lock | None = None
    account_failures: int = 0  # the account's count in its day, this try included
    holds_turn: bool = False  # this try claimed the account's turn after a wait (and set the next wait)


def _give_back(key: str) -> None:
    with contextlib.suppress(ValueError):  # the window closed meanwhile: nothing left to give back
        cache.decr(key)


def _account_wait(failures: int) -> int | None:
    """How long the account waits after its `failures`-th failure of the day (None: not past its threshold)."""
    beyond = failures - settings.KAMENG_LOGIN_ACCOUNT_BACKOFF_AFTER
    if beyond < 0:
        return None
    return int(min(2 ** min(beyond, 20), settings.KAMENG_LOGIN_ACCOUNT_BACKOFF_MAX_SECONDS))


def _account_turn_take(*, account: str, wait: int) -> Lock | None:
    """Claim the one try allowed once the account's wait is over, and start the next wait; a lock if it is not over
    or another try claimed it first. The claim is keyed by the wait it follows, so it is won exactly once."""
    key = _account_wait_key(account)
    now = time.time()
    current = cache.get(key)
    if current is not None and float(current) > now:
        return Lock(seconds=max(1, math.ceil(float(current) - now)), reason="account")
    if not cache.add(f"{key}:after:{current}", 1, timeout=TURN_CLAIM_SECONDS):
        waits_until = cache.get(key)
        seconds = math.ceil(float(waits_until) - now) if waits_until is not None else 1
        return Lock(seconds=max(1, seconds), reason="account")
    cache.set(key, now + wait, timeout=wait + WAIT_KEPT_SECONDS)
    return None


def login_take(*, account: str, address: str | None) -> LoginAttempt:
    """Count one try at a password for `account` from `address` before checking it; refused (`lock` set, nothing
    counted) if the address, the pair or the account has no try left."""
    lock = login_lock(account=account, address=address)  # already locked: refused without counting anything
    if lock is not None:
        return LoginAttempt(account=account, address=address, lock=lock)
    window = settings.KAMENG_LOGIN_LOCK_SECONDS
    taken: list[str] = []

    def refused(lock: Lock) -> LoginAttempt:
        for key in taken:
            _give_back(key)
        return LoginAttempt(account=account, address=address, lock=lock)

    if address:
        key = _address_key(address)
        taken.append(key)
        if counter_hit(key=key, window=window) > settings.KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS:
            return refused(Lock(seconds=counter_seconds_left(key=key, window=window), reason="login"))
    pair = _pair_key(account, address)
    taken.append(pair)
    if counter_hit(key=pair, window=window) > settings.KAMENG_LOGIN_MAX_FAILURES:
        return refused(Lock(seconds=counter_seconds_left(key=pair, window=window), reason="login"))
    account_key = _account_key(account)
    taken.append(account_key)
    failures = counter_hit(key=account_key, window=ACCOUNT_WINDOW_SECONDS)
    wait = _account_wait(failures)
    holds_turn = False
    if wait is not None and not (address and cache.get(_known_address_key(account, address))):
        turn_lock = _account_turn_take(account=account, wait=wait)
        if turn_lock is not None:
            return refused(turn_lock)
        holds_turn = True
    return LoginAttempt(account=account, address=address, account_failures=failures, holds_turn=holds_turn)


def login_failed(*, attempt: LoginAttempt) -> None:
    """The try was wrong: its counts stand; past the account's threshold the account waits from now."""
    wait = _account_wait(attempt.account_failures)
    if wait is not None:
        cache.set(_account_wait_key(attempt.account), time.time() + wait, timeout=wait + WAIT_KEPT_SECONDS)


def login_succeeded(*, attempt: LoginAttempt) -> None:
    """The try was right: the pair's count is cleared, the address and account counts get this try back, a wait
    this try started is over, and the address is remembered for the account."""
    account, address = attempt.account, attempt.address
    cache.delete(_pair_key(account, address))
    if address:
        _give_back(_address_key(address))
    _give_back(_account_key(account))
    if attempt.holds_turn:
        # Over: the next try claims the turn after this (ended) wait.
        cache.set(_account_wait_key(account), time.time(), timeout=WAIT_KEPT_SECONDS)
    if address:
        cache.set(_known_address_key(account, address), 1, timeout=KNOWN_ADDRESS_SECONDS)


# --- registrations -------------------------------------------------------------------------------------------------

def _registrations_key(address: str) -> str:
    return f"register:n:{address_block(address)}"


def _refusals_key(address: str) -> str:
    return f"register:r:{address_block(address)}"


def registration_lock(*, address: str | None) -> Lock | None:
    """The lock in force for registering from `address`: its accounts or its refusals for the hour used up."""
    if not address:
        return None
    for key, limit in ((_registrations_key(address), settings.KAMENG_REGISTRATIONS_PER_ADDRESS_PER_HOUR),
                       (_refusals_key(address), settings.KAMENG_REGISTRATION_REFUSALS_PER_ADDRESS_PER_HOUR)):
        if _count(key) >= limit:
            return Lock(seconds=counter_seconds_left(key=key, window=REGISTRATION_WINDOW_SECONDS),
                        reason="registration")
    return None


def registration_take(*, address: str | None) -> Lock | None:
    """Count one account about to be made from `address`; a lock instead if that would pass the hour's limit.

    Counted before the account is written, atomically, so simultaneous requests cannot slip past the limit together.
    """
    if not address:
        return None
    key = _registrations_key(address)
    if counter_hit(key=key, window=REGISTRATION_WINDOW_SECONDS) > settings.KAMENG_REGISTRATIONS_PER_ADDRESS_PER_HOUR:
        return Lock(seconds=counter_seconds_left(key=key, window=REGISTRATION_WINDOW_SECONDS), reason="registration")
    return None


def registration_refused(*, address: str | None) -> None:
    """Count one "name not available" answer given to `address`."""
    if address:
        counter_hit(key=_refusals_key(address), window=REGISTRATION_WINDOW_SECONDS)
