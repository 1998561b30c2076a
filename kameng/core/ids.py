"""Public identifiers: order and payment numbers that are time-sortable and hard to guess."""

from __future__ import annotations

import functools
import re
import secrets
import zoneinfo
from datetime import datetime

from django.conf import settings

# The largest primary key: ids are bigints (PostgreSQL, MySQL/MariaDB) or SQLite's 64-bit INTEGER. An id from
# outside names no row, and a plain-SQL query given one fails on PostgreSQL instead of finding nothing.
DATABASE_ID_MAX = 2**63 - 1


def is_database_id(value: object) -> bool:
    """Whether `value` can be a primary key (an int in 1..2^63-1; not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= DATABASE_ID_MAX


# What an order, payment or refund number can look like: public_number() makes them (letters and digits; "-" in
# numbers made by hand), the columns hold 32. Anything else, from a URL or a form, names no row and is answered
# without a query: PostgreSQL cannot even compare a string holding a NUL character.
PUBLIC_NUMBER_RE = re.compile(r"[A-Za-z0-9-]{1,32}", re.ASCII)


def is_public_number(value: object) -> bool:
    return isinstance(value, str) and PUBLIC_NUMBER_RE.fullmatch(value) is not None


def public_number(prefix: str) -> str:
    """`prefix` + the site's local time (settings.TIME_ZONE) to the millisecond + 6 random digits, e.g.
    K261126143905123048213 (22 chars).

    Fits epay's out_trade_no alphabet and WeChat's 6–32 characters; a unique constraint is the final guard.
    """
    now = datetime.now(_site_zone())
    return f"{prefix}{now:%y%m%d%H%M%S}{now.microsecond // 1000:03d}{secrets.randbelow(10**6):06d}"


@functools.cache
def _site_zone() -> zoneinfo.ZoneInfo:
    # The site's zone, not the request's active one: a number says when it was made the same way everywhere, and
    # reading the active zone (a context-local) costs more than the rest of a number.
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)
