"""Who is calling the Open API v1: the signed-request check every route runs before anything else.

In order, each refusal a JSON `{"code", "message"}`:
1. the four headers (X-Kameng-Key, X-Kameng-Timestamp, X-Kameng-Nonce, X-Kameng-Signature) are there and well
   formed (the nonce 16–64 visible ASCII characters) — else 401;
2. the timestamp is within 300 s of the server's clock (300 passes, 301 does not) — else 401;
3. the key exists and is not revoked — else 401 (one answer for both: it says nothing about other keys);
4. the signature matches (kameng.core.openapi_signing; compared in constant time) — else 401;
5. the nonce is new for this key (kameng.resellers.nonces) — else 401; checked only for a signed request, so
   nobody without the secret can use up a key's nonces;
6. the key's reseller is approved (正常) — else 403;
7. the client address is in the key's IP allow-list, if it has one — else 403, naming the address;
8. the key is within KAMENG_OPENAPI_RATE_PER_MINUTE — else 429 with Retry-After (a request refused before this
   step is not counted).
Then the key's last use is noted and the route runs with `request.auth` = the Caller. Where the nonces and the rate
counter are in Redis the note goes with them in step 5's script (a rate-limited request, signed and allowed, counts
as a use) and reaches the key's row within a minute (kameng.resellers.apikeys `api_key_use_note`); otherwise (no
Redis, the nonces in the database, the rate limit off) it is a conditional UPDATE at most once a minute per key and
process (`api_key_touch`).
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.security import APIKeyHeader

from kameng.core.counters import counter_seconds_left
from kameng.core.errors import ApplicationError
from kameng.core.http import client_address
from kameng.core.openapi_signing import (
    HEADER_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    SKEW_SECONDS,
    openapi_signature,
    signature_equal,
)
from kameng.ledger.models import Account, AccountKind
from kameng.ledger.services import wallet_account_id_seen
from kameng.membership.models import Membership
from kameng.membership.pricing import buyer_level_rank_seen
from kameng.resellers.apikeys import (
    KeyForRequest,
    KeyReadAlso,
    api_key_for_request,
    api_key_touch,
    api_key_use_note,
    ip_allowed,
)
from kameng.resellers.nonces import nonce_notes_supported, nonce_remember, nonce_remember_counted

TIMESTAMP_SKEW_SECONDS = SKEW_SECONDS
NONCE_RE = re.compile(r"[\x21-\x7e]{16,64}", re.ASCII)
TIMESTAMP_RE = re.compile(r"[0-9]{1,12}", re.ASCII)
KEY_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,40}", re.ASCII)
RATE_WINDOW_SECONDS = 60


class UnauthorizedError(ApplicationError):
    status_code = 401


class ForbiddenError(ApplicationError):
    status_code = 403


class RateLimitedError(ApplicationError):
    status_code = 429


@dataclass(frozen=True)
class Caller:
    """The verified key of a request and its reseller."""

    key: KeyForRequest

    @property
    def reseller_id(self) -> int:
        return self.key.reseller_id

    @property
    def user_id(self) -> int:
        return self.key.user_id


class SignedRequest(APIKeyHeader):
    """X-Kameng-Key plus the signature headers (the OpenAPI document names the key header as the scheme)."""

    param_name = HEADER_KEY

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        return request_verify(request)


def request_verify(request: HttpRequest, *, now: float | None = None) -> Caller:
    headers = request.headers
    key_id = headers.get(HEADER_KEY, "")
    timestamp = headers.get(HEADER_TIMESTAMP, "")
    nonce = headers.get(HEADER_NONCE, "")
    given = headers.get(HEADER_SIGNATURE, "")
    if not (key_id and timestamp and nonce and given):
        raise UnauthorizedError("缺少签名请求头：需要 X-Kameng-Key、X-Kameng-Timestamp、X-Kameng-Nonce 和 "
                                "X-Kameng-Signature", code="signature_missing")
    if not TIMESTAMP_RE.fullmatch(timestamp):
        raise UnauthorizedError("X-Kameng-Timestamp 必须是 Unix 时间戳（秒）", code="timestamp_invalid")
    current = time.time() if now is None else now
    if abs(int(current) - int(timestamp)) > TIMESTAMP_SKEW_SECONDS:
        raise UnauthorizedError("X-Kameng-Timestamp 与服务器时间相差超过 %(skew)s 秒，请校准时钟后重新签名",
                                code="timestamp_expired", params={"skew": TIMESTAMP_SKEW_SECONDS})
    if not NONCE_RE.fullmatch(nonce):
        raise UnauthorizedError("X-Kameng-Nonce 须为 16–64 个可见 ASCII 字符", code="nonce_invalid")
    key = api_key_for_request(key_id=key_id, also=_buyer_also()) if KEY_ID_RE.fullmatch(key_id) else None
    if key is None or not key.is_active:
        raise UnauthorizedError("API 密钥不存在或已吊销", code="invalid_key")
    expected = openapi_signature(secret=key.secret, method=request.method or "GET",
                                 path_with_query=request.get_full_path(), timestamp=timestamp, nonce=nonce,
                                 body=request.body)
    if not signature_equal(given, expected):
        raise UnauthorizedError("签名错误：请按文档用密钥对「方法、路径和查询串、时间戳、随机串、请求体 SHA-256」签名",
                                code="signature_invalid")
    _after_signature(request, key, nonce)
    return Caller(key=key)


def _after_signature(request: HttpRequest, key: KeyForRequest, nonce: str) -> None:
    """Steps 5–8 and the note of the key's use, in one cache call where it can be (kameng.resellers.nonces): the
    nonce, and the key's rate counter when the request is not refused at steps 6–7 first (decided here without a
    round trip; a refused request is not counted, as before)."""
    address = client_address(request)
    is_allowed = key.reseller_is_active and (not key.ip_allowlist
                                             or ip_allowed(allowlist=key.ip_allowlist, address=address))
    limit = settings.KAMENG_OPENAPI_RATE_PER_MINUTE
    counter = _rate_counter(key) if is_allowed and limit > 0 else None
    noted = counter is not None and nonce_notes_supported()
    if counter is not None:
        count = nonce_remember_counted(api_key_pk=key.pk, nonce=nonce, counter=counter, window=RATE_WINDOW_SECONDS,
                                       note=api_key_use_note(api_key_pk=key.pk) if noted else None)
        is_new = count is not None
    else:
        count, is_new = None, nonce_remember(api_key_pk=key.pk, nonce=nonce)
    if not is_new:
        raise UnauthorizedError("X-Kameng-Nonce 已使用过：每个请求须使用新的随机串", code="nonce_reused")
    if not key.reseller_is_active:
        raise ForbiddenError("代理账号未通过审核或已停用，暂不能调用开放接口", code="reseller_inactive")
    if not is_allowed:
        raise ForbiddenError("来源 IP %(ip)s 不在该密钥的 IP 白名单中：请在代理后台「API 密钥」中添加后重试",
                             code="ip_not_allowed", params={"ip": address})
    if counter is not None and count is not None and count > limit:
        retry_after = counter_seconds_left(key=counter, window=RATE_WINDOW_SECONDS)
        raise RateLimitedError("请求过于频繁：每个密钥每分钟最多 %(limit)s 次，请 %(seconds)s 秒后重试",
                               code="rate_limited", params={"limit": limit, "seconds": retry_after},
                               extra={"retry_after": retry_after})
    if not noted:
        api_key_touch(api_key_pk=key.pk)


@functools.cache
def _buyer_also() -> KeyReadAlso:
    """With a key read cold, its buyer's wallet account and stored member level: the checkout asks for both (the
    wallet to pay from, the level for the member price), each one more round trip on a buyer's first order — every
    order of a flash sale."""
    wallet, membership = Account._meta.db_table, Membership._meta.db_table
    return KeyReadAlso(
        joins=(f"LEFT JOIN {wallet} w ON w.owner_id = r.user_id AND w.kind = '{AccountKind.WALLET.value}' "
               f"LEFT JOIN {membership} m ON m.user_id = r.user_id"),
        columns="w.id, m.level_rank", seen=_buyer_seen)


def _buyer_seen(user_id: int, values: tuple[Any, ...]) -> None:
    wallet_id, level_rank = values
    if wallet_id is not None:  # none yet: created with the first checkout
        wallet_account_id_seen(user_id=user_id, account_id=wallet_id)
    buyer_level_rank_seen(buyer_id=user_id, rank=level_rank)


def _rate_counter(key: KeyForRequest) -> str:
    return f"openapi:rate:{key.pk}"
