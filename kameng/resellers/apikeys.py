"""Open API v1 keys (API 密钥) of a reseller: made, listed, revoked, their IP allow-list edited — by the reseller in
its console — and looked up by the Open API's verifier.

A key is a public id (`key_id`, sent as X-Kameng-Key) and a secret of 32 random bytes (url-safe base64), made here
and never typed: shown once when the key is made, stored encrypted (ApiKey.secret), never shown or sent again.
A revoked key stays listed (its orders keep pointing at it) and answers 401 from then on (in the process that
revoked it at once, in the others within KEY_CACHE_SECONDS: the verifier holds a key row that long).

The IP allow-list is one IP address or CIDR block per line (IPv4 or IPv6); empty means any address. It is checked
on input (a line that is neither is refused, naming it); the verifier parses it once per list and process.
"""

from __future__ import annotations

import functools
import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from kameng.core.counters import counter_notes_put_back, counter_notes_take
from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.resellers.models import ApiKey, Reseller, ResellerStatus
from kameng.resellers.pricing import buyer_tier_seen

KEY_ID_PREFIX = "kk_"
SECRET_BYTES = 32
NAME_MAX = 60
ALLOWLIST_MAX_LINES = 100
LAST_USED_WRITE_SECONDS = 60
# The hash (in the Redis cache) where a verified request notes its key's use, written to the rows every minute.
LAST_USED_NOTES = "openapi:last-used"
# How long a process keeps a key row it read for the verifier (the revocation bound in other processes), and how
# many keys it keeps at most.
KEY_CACHE_SECONDS = 2.0
KEY_CACHE_MAX = 10_000

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Per process: key id → (the key as the verifier needs it, when it was read); key pk → when it was last touched.
_keys_held: dict[str, tuple[KeyForRequest, float]] = {}
_touched: dict[int, float] = {}
# Per process: a secret's ciphertext → the secret (a key row read again decrypts nothing).
_secrets: dict[bytes, str] = {}


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str  # shown once, to the reseller who made it


def api_key_id_new() -> str:
    return KEY_ID_PREFIX + secrets.token_hex(12)


def api_key_secret_new() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def ip_allowlist_clean(text: str) -> str:
    """The allow-list as stored: one normalised address or CIDR per line, blank lines and duplicates dropped.
    Raises ApplicationError naming the first line that is neither."""
    lines: list[str] = []
    for raw in (text or "").replace(",", "\n").splitlines():
        line = raw.strip()
        if not line:
            continue
        try:
            network = ipaddress.ip_network(line, strict=False)
        except ValueError as error:
            raise ApplicationError("IP 白名单第 %(line)s 项「%(value)s」不是有效的 IP 地址或 CIDR 网段",
                                   code="invalid_ip_allowlist",
                                   params={"line": len(lines) + 1, "value": line[:50]}) from error
        shown = str(network.network_address) if network.num_addresses == 1 else str(network)
        if shown not in lines:
            lines.append(shown)
    if len(lines) > ALLOWLIST_MAX_LINES:
        raise ApplicationError("IP 白名单最多 %(max)s 项", code="invalid_ip_allowlist",
                               params={"max": ALLOWLIST_MAX_LINES})
    return "\n".join(lines)


@functools.lru_cache(maxsize=1024)
def ip_allowlist_networks(text: str) -> tuple[Network, ...]:
    """The stored allow-list parsed (lines that do not parse are skipped: they were refused on input); remembered
    per process, by its text."""
    networks: list[Network] = []
    for line in text.splitlines():
        try:
            networks.append(ipaddress.ip_network(line.strip(), strict=False))
        except ValueError:
            continue
    return tuple(networks)


def ip_allowed(*, allowlist: str, address: str) -> bool:
    """Whether `address` may use a key with this allow-list (an empty list allows any address)."""
    networks = ip_allowlist_networks(allowlist)
    if not networks:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == network.version and ip in network for network in networks)


def _name_clean(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ApplicationError("请填写密钥名称", code="api_key_name_required")
    if len(name) > NAME_MAX:
        raise ApplicationError("密钥名称最多 %(max)s 个字", code="api_key_name_too_long", params={"max": NAME_MAX})
    return name


def _name_unused(*, reseller_id: int, name: str, except_pk: int | None = None) -> None:
    """Names tell a reseller's programs apart: two keys in use under one name would not."""
    same = ApiKey.objects.filter(reseller_id=reseller_id, revoked_at__isnull=True, name=name)
    if except_pk is not None:
        same = same.exclude(pk=except_pk)
    if same.exists():
        raise ConflictError("已有名为「%(name)s」的有效密钥，请换一个名称", code="api_key_name_taken",
                            params={"name": name})


def api_key_create(*, reseller_id: int, name: str, ip_allowlist: str = "") -> CreatedKey:
    """Make a key for the reseller; the secret in the answer is the only time anyone sees it."""
    name = _name_clean(name)
    allowlist = ip_allowlist_clean(ip_allowlist)
    _name_unused(reseller_id=reseller_id, name=name)
    active = ApiKey.objects.filter(reseller_id=reseller_id, revoked_at__isnull=True).count()
    if active >= settings.KAMENG_OPENAPI_KEYS_PER_RESELLER:
        raise ApplicationError("最多同时保留 %(max)s 个有效密钥，请先吊销不用的密钥",
                               code="api_key_limit", params={"max": settings.KAMENG_OPENAPI_KEYS_PER_RESELLER})
    secret = api_key_secret_new()
    key = ApiKey.objects.create(reseller_id=reseller_id, key_id=api_key_id_new(), secret=secret, name=name,
                                ip_allowlist=allowlist)
    return CreatedKey(key=key, secret=secret)


def _key_of(reseller_id: int, api_key_pk: int) -> ApiKey:
    key = ApiKey.objects.select_for_update().filter(pk=api_key_pk, reseller_id=reseller_id).first()
    if key is None:
        raise NotFoundError("密钥不存在", code="api_key_not_found")
    return key


def api_key_revoke(*, reseller_id: int, api_key_pk: int) -> ApiKey:
    """Revoke one of the reseller's keys (idempotent): from now on it answers 401."""
    with transaction.atomic():
        key = _key_of(reseller_id, api_key_pk)
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
    api_keys_forget(key_id=key.key_id)
    return key


def api_key_update(*, reseller_id: int, api_key_pk: int, name: str, ip_allowlist: str) -> ApiKey:
    """Rename a key and replace its IP allow-list (a revoked key cannot be edited)."""
    name = _name_clean(name)
    allowlist = ip_allowlist_clean(ip_allowlist)
    with transaction.atomic():
        key = _key_of(reseller_id, api_key_pk)
        if key.revoked_at is not None:
            raise ApplicationError("密钥已吊销，不能修改", code="api_key_revoked")
        _name_unused(reseller_id=reseller_id, name=name, except_pk=key.pk)
        key.name = name
        key.ip_allowlist = allowlist
        key.save(update_fields=["name", "ip_allowlist"])
    api_keys_forget(key_id=key.key_id)
    return key


def api_keys_of(*, reseller_id: int) -> list[ApiKey]:
    return list(ApiKey.objects.filter(reseller_id=reseller_id).defer("secret").order_by("-pk"))


@dataclass(frozen=True)
class KeyForRequest:
    """What the verifier needs of a key, read in one query."""

    pk: int
    key_id: str
    secret: str
    ip_allowlist: str
    is_active: bool
    reseller_id: int
    reseller_is_active: bool
    user_id: int


@dataclass(frozen=True)
class KeyReadAlso:
    """More of the caller's rows to read with a key read cold, in the same query: `joins` (SQL joining on the
    reseller's user id, `r.user_id`) and `columns` (their values), handed as a tuple to `seen(user_id, values)`."""

    joins: str
    columns: str
    seen: Callable[[int, tuple[Any, ...]], None]


def api_key_for_request(*, key_id: str, also: KeyReadAlso | None = None) -> KeyForRequest | None:
    """The key named by X-Kameng-Key with its reseller, or None when there is no such key.

    Held per process for KEY_CACHE_SECONDS (the row read and its secret decrypted once, not per request): a key
    revoked or edited, or its reseller suspended, in this process is forgotten at once, and in every other process
    within KEY_CACHE_SECONDS. An unknown key id is not held (nothing to gain from remembering guesses).

    A key's first request in a process (every request of a flash sale's thousand buyers) costs one plain query with
    its join — the ORM's compiling of the same look-up cost ~5 times its CPU — and a secret already decrypted in
    this process (the same ciphertext read again after KEY_CACHE_SECONDS) is not decrypted again. The reseller's
    tier is held for the price rule from the same row (`buyer_tier_seen`), and `also` reads more with it: the
    first request of a buyer then asks the database once for what its checkout needs of the buyer."""
    now = time.monotonic()
    held = _keys_held.get(key_id)
    if held is not None and now - held[1] <= KEY_CACHE_SECONDS:
        return held[0]
    sql = _KEY_SQL if also is None else _key_sql(also)
    with connection.cursor() as cursor:
        cursor.execute(sql, [key_id])
        row = cursor.fetchone()
    if row is None:
        _keys_held.pop(key_id, None)
        return None
    pk, ciphertext, ip_allowlist, revoked_at, reseller_id, reseller_status, user_id, tier_id = row[:8]
    buyer_tier_seen(buyer_id=user_id, status=reseller_status, tier_id=tier_id)
    if also is not None:
        also.seen(user_id, tuple(row[8:]))
    found = KeyForRequest(pk=pk, key_id=key_id, secret=_secret_of(bytes(ciphertext)), ip_allowlist=ip_allowlist,
                          is_active=revoked_at is None, reseller_id=reseller_id,
                          reseller_is_active=reseller_status == ResellerStatus.ACTIVE, user_id=user_id)
    if len(_keys_held) >= KEY_CACHE_MAX:
        _keys_held.clear()
    _keys_held[key_id] = (found, now)
    return found


@functools.cache
def _key_sql(also: KeyReadAlso | None = None) -> str:
    key, reseller = ApiKey._meta.db_table, Reseller._meta.db_table
    columns, joins = ("", "") if also is None else (f", {also.columns}", f" {also.joins}")
    return (f"SELECT k.id, k.secret, k.ip_allowlist, k.revoked_at, r.id, r.status, r.user_id, r.tier_id{columns} "  # noqa: S608 - our own table names
            f"FROM {key} k JOIN {reseller} r ON r.id = k.reseller_id{joins} WHERE k.key_id = %s")


_KEY_SQL = _key_sql()


def _secret_of(ciphertext: bytes) -> str:
    """The key's secret, decrypted once per ciphertext and process (the field's own decryption and context)."""
    secret = _secrets.get(ciphertext)
    if secret is None:
        secret = str(ApiKey._meta.get_field("secret").from_db_value(ciphertext, None, connection))
        if len(_secrets) >= KEY_CACHE_MAX:
            _secrets.clear()
        _secrets[ciphertext] = secret
    return secret


def api_keys_forget(*, key_id: str | None = None) -> None:
    """Drop a key (or every key, and the touch times) from this process's cache: after a revoke or an edit."""
    if key_id is None:
        _keys_held.clear()
        _touched.clear()
        _secrets.clear()
    else:
        _keys_held.pop(key_id, None)


def api_key_touch(*, api_key_pk: int, now: datetime | None = None) -> None:
    """Record that the key was used: at most one UPDATE a minute per key and process, never one per request.

    One plain conditional UPDATE that writes only when the stored time is a minute old or more: every process
    asks it at most once a minute per key, and the row is written at most about once a minute whatever the number
    of processes (no cache round trip before it: a key's first request — each one of a flash sale — sends the one
    statement)."""
    moment = time.monotonic()
    if moment - _touched.get(api_key_pk, -LAST_USED_WRITE_SECONDS - 1.0) < LAST_USED_WRITE_SECONDS:
        return
    _touched[api_key_pk] = moment
    when = now or timezone.now()
    stale = when - timedelta(seconds=LAST_USED_WRITE_SECONDS)
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(_TOUCH_SQL, [adapt(when), api_key_pk, adapt(stale)])


def api_key_use_note(*, api_key_pk: int) -> tuple[str, int, int]:
    """The note of the key's use now, for the nonce's script (kameng.core.counters `note`): the cheap way of
    `api_key_touch` where the counters are on Redis — no statement per request, nor per key and process; the notes
    reach the rows with `api_keys_last_used_flush` (a beat task, every minute)."""
    return (LAST_USED_NOTES, api_key_pk, int(time.time()))


def api_keys_last_used_flush() -> int:
    """Write the noted uses (`api_key_use_note`) to the keys' `last_used_at`, a stored time only ever moving forward;
    returns how many keys were noted. One statement for all on PostgreSQL. The notes are taken before they are
    written and given back if the write fails (the next flush writes them)."""
    notes = counter_notes_take(key=LAST_USED_NOTES)
    if not notes:
        return 0
    moments = {pk: datetime.fromtimestamp(seconds, tz=UTC) for pk, seconds in notes.items()}
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(_FLUSH_SQL, [list(moments), list(moments.values())])
            else:
                for pk, moment in moments.items():
                    ApiKey.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=moment), pk=pk).update(
                        last_used_at=moment)
    except BaseException:
        counter_notes_put_back(key=LAST_USED_NOTES, notes=notes)
        raise
    return len(moments)


_FLUSH_SQL = (f"UPDATE {ApiKey._meta.db_table} AS k SET last_used_at = used.at "  # noqa: S608 - our own table name
              "FROM unnest(%s::bigint[], %s::timestamptz[]) AS used(id, at) "
              "WHERE k.id = used.id AND (k.last_used_at IS NULL OR k.last_used_at < used.at)")
_TOUCH_SQL = (f"UPDATE {ApiKey._meta.db_table} SET last_used_at = %s "  # noqa: S608 - our own table name
              "WHERE id = %s AND (last_used_at IS NULL OR last_used_at < %s)")
