"""Login throttling: too many wrong passwords for one login, or from one address, lock further tries for a while.

Counters live in the cache (Redis in production, shared by every web node): a fixed window that starts at the
first failure. The login is counted by its keyed blind index, so no phone number or username sits in a cache key.
A correct password clears the login's counter, not the address's.

The address limit stops one address spraying passwords over many accounts. Behind a carrier-grade NAT or an office
gateway many people share one address, and a locked address refuses them all, right password or not; so its
default (KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS, 300 in 15 minutes) sits far above what people sharing an address
get wrong by accident, while one account is protected by its own limit of 5.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from kameng.core.crypto import blind_index

LOGIN_CONTEXT = "accounts.login.throttle"


@dataclass(frozen=True)
class LoginLock:
    seconds: int

    @property
    def minutes(self) -> int:
        return max(1, -(-self.seconds // 60))


def _login_key(login: str) -> str:
    return "login-fail:u:" + blind_index(login.strip().casefold(), context=LOGIN_CONTEXT).hex()


def _address_key(address: str) -> str:
    """IPv4 per address; IPv6 per /64, the block one subscriber gets (counting single addresses would give anyone
    with a /64 an unlimited budget)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"login-fail:ip:{address[:45]}"
    if ip.version == 6:
        return f"login-fail:ip:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"login-fail:ip:{ip}"


def _count(key: str) -> int:
    return int(cache.get(key) or 0)


def login_lock(*, login: str, address: str | None) -> LoginLock | None:
    """The lock in force for this login or address, if either has used up its failures."""
    window = settings.KAMENG_LOGIN_LOCK_SECONDS
    if login.strip() and _count(_login_key(login)) >= settings.KAMENG_LOGIN_MAX_FAILURES:
        return LoginLock(seconds=window)
    if address and _count(_address_key(address)) >= settings.KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS:
        return LoginLock(seconds=window)
    return None


def login_failed(*, login: str, address: str | None) -> None:
    keys = [_login_key(login)] if login.strip() else []
    if address:
        keys.append(_address_key(address))
    for key in keys:
        # add() opens the window only if none is open; incr() is atomic on Redis (and under locmem's lock).
        cache.add(key, 0, timeout=settings.KAMENG_LOGIN_LOCK_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # the window closed between add() and incr()
            cache.set(key, 1, timeout=settings.KAMENG_LOGIN_LOCK_SECONDS)


def login_succeeded(*, login: str) -> None:
    cache.delete(_login_key(login))
