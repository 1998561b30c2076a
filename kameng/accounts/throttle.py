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

Registrations. KAMENG_REGISTRATIONS_PER_ADDRESS_PER_HOUR accounts per client address (per /64), and
KAMENG_REGISTRATION_REFUSALS_PER_ADDRESS_PER_HOUR "name not available" answers, so that neither making accounts in
bulk nor probing which names exist is quick.

Windows are fixed: they start at the first count and the lock lasts until the window ends.
"""

from __future__ import annotations

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


def login_failed(*, account: str, address: str | None) -> None:
    window = settings.KAMENG_LOGIN_LOCK_SECONDS
    if address:
        counter_hit(key=_address_key(address), window=window)
    counter_hit(key=_pair_key(account, address), window=window)
    failures = counter_hit(key=_account_key(account), window=ACCOUNT_WINDOW_SECONDS)
    beyond = failures - settings.KAMENG_LOGIN_ACCOUNT_BACKOFF_AFTER
    if beyond >= 0:
        wait = min(2 ** min(beyond, 20), settings.KAMENG_LOGIN_ACCOUNT_BACKOFF_MAX_SECONDS)
        cache.set(_account_wait_key(account), time.time() + wait, timeout=wait)


def login_succeeded(*, account: str, address: str | None) -> None:
    cache.delete(_pair_key(account, address))
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
