"""The acg-faka 店铺共享 (shared shop) docking protocol, the reseller side: its MD5 request signature, who is calling
(an Open API key: app_id = the key id, app_key = its secret) and the record tying a trade to its request number.

The HTTP endpoints are kameng.openapi.acg_shared. This protocol is weaker than the Open API v1 and kept only so that
existing 异次元发卡 (acg-faka) sites can take kameng as their upstream (PROTOCOLS.md §5):
- the secret itself travels in every request body (`app_key`), so anyone who sees one request holds the key;
- no timestamp and no nonce: any captured request can be replayed at will (a replayed trade is answered with the
  order its `request_no` made, never charged twice, but connect, items and query answer again);
- MD5, not an HMAC: acceptable only because the key is in the signed text, and not a reason to trust it more.
Staff turn it off with KAMENG_ACG_SHARED_ENABLED (the endpoints then answer 404).

The signature, as acg-faka's `Str::generateSignature` makes and its `SharedValidation` checks it (from the facts
below, not its code): take every POSTed field (the client adds `app_id` and `app_key` to its own fields), drop
`sign` and every field whose value is the empty string, sort by name, join raw (not URL-encoded) as
`k1=v1&k2=v2…`, append `&key=<app_key>`, MD5, lowercase hex; compared in constant time with `sign`, exactly.

A trade is bought with the purchase service under `request_id` = `request_no` on the "openapi" sales channel, as an
Open API v1 order is, and recorded as an OpenApiOrder with the same body digest the v1 would compute for the same
SKU and quantity: one request-number namespace per reseller for both doors.

Where each fact was checked (GitHub lizhipay/acg-faka, its default branch as stored for code search):
- signature: app/Util/Str.php `generateSignature` (unset sign, ksort, drop `''`, urldecode(http_build_query) .
  "&key=" . key, md5) and app/Interceptor/SharedValidation.php (app_id looks up the merchant, hash_equals on sign,
  "商户ID不存在" / "密钥错误");
- the client adds app_id and app_key to the signed form fields: app/Service/Impl/SharedService.php `post`;
- field sizes on the client: kernel/Install/Install.sql, table `shared` (`app_id` varchar(32), `app_key`
  varchar(64), `domain` varchar(128)) — an Open API key id (27 characters) and secret (43) fit. The file was found
  through a string search that named no path: the path is inferred, unverified.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from kameng.catalog.pricing import SALES_CHANNEL_OPENAPI
from kameng.core.errors import ApplicationError, ConflictError
from kameng.core.ids import is_public_number
from kameng.orders.models import Order
from kameng.resellers.apikeys import api_key_for_request, api_key_touch, ip_allowed
from kameng.resellers.models import OpenApiOrder
from kameng.resellers.openapi_orders import openapi_body_digest

APP_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,40}", re.ASCII)
REQUEST_NO_RE = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)


class AcgUnauthorizedError(ApplicationError):
    status_code = 401


class AcgForbiddenError(ApplicationError):
    status_code = 403


def acg_signature(*, params: Mapping[str, str], app_key: str) -> str:
    """The protocol's signature of the form fields `params` (see the module docstring)."""
    pairs = sorted((name, value) for name, value in params.items() if name != "sign" and value != "")
    text = "&".join(f"{name}={value}" for name, value in pairs) + "&key=" + app_key
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - the protocol's own MD5, documented as weak


def acg_signature_matches(given: str, expected: str) -> bool:
    """Constant-time comparison, as bytes (a non-ASCII `given` is simply wrong, not an error)."""
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class AcgCaller:
    """The verified key of a shared-shop request and its reseller."""

    api_key_pk: int
    reseller_id: int
    user_id: int


def acg_caller_verify(*, params: Mapping[str, str], client_ip: str) -> AcgCaller:
    """Who signed these form fields. In order: the key (app_id) exists and is not revoked, the signature matches,
    the reseller is approved, the address is in the key's IP allow-list (when it has one). Each refusal names what
    to fix; the first two say nothing about which of them failed to anyone without the key."""
    app_id = params.get("app_id", "")
    key = api_key_for_request(key_id=app_id) if APP_ID_RE.fullmatch(app_id) else None
    if key is None or not key.is_active:
        raise AcgUnauthorizedError("商户ID不存在或已吊销：请在上游代理后台「API 密钥」中查看密钥 ID（app_id）",
                                   code="invalid_key")
    expected = acg_signature(params=params, app_key=key.secret)
    if not acg_signature_matches(params.get("sign", ""), expected):
        raise AcgUnauthorizedError("密钥错误：签名不匹配，请核对商户密钥（app_key）", code="signature_invalid")
    if not key.reseller_is_active:
        raise AcgForbiddenError("代理账号未通过审核或已停用，暂不能对接", code="reseller_inactive")
    if key.ip_allowlist and not ip_allowed(allowlist=key.ip_allowlist, address=client_ip):
        raise AcgForbiddenError("来源 IP %(ip)s 不在该密钥的 IP 白名单中：请在代理后台「API 密钥」中添加后重试",
                                code="ip_not_allowed", params={"ip": client_ip})
    api_key_touch(api_key_pk=key.pk)
    return AcgCaller(api_key_pk=key.pk, reseller_id=key.reseller_id, user_id=key.user_id)


def acg_body_digest(*, sku_id: int, quantity: int, recharge_account: str) -> str:
    """The Open API v1's digest of an order body without a notify_url: the same request_no for the same SKU and
    quantity is the same request through either door."""
    return openapi_body_digest(sku_id=sku_id, quantity=quantity, recharge_account=recharge_account, notify_url="")


def acg_record_by_request(*, reseller_id: int, request_no: str) -> OpenApiOrder | None:
    return (OpenApiOrder.objects.select_related("order").filter(reseller_id=reseller_id, request_no=request_no)
            .first())


def acg_conflict_check(record: OpenApiOrder, *, body_digest: str) -> None:
    if record.body_digest != body_digest:
        raise ConflictError("该 request_no 已用于另一笔订单（商品、数量或充值信息不同），请换一个 request_no",
                            code="request_no_conflict")


def acg_order_record(*, order: Order, reseller_id: int, api_key_pk: int, request_no: str,
                     body_digest: str) -> OpenApiOrder:
    """Tie the order to its request number (idempotent; written right after the purchase, outside its transaction:
    if the process dies in between, the next trade with that number gets the order back from the purchase service
    and writes this then). Raises `request_no_conflict` (409) for a number recorded with another body, or naming
    an order of another sales channel."""
    if order.sales_channel != SALES_CHANNEL_OPENAPI:
        raise ConflictError("该 request_no 已用于本账号在其他渠道下的订单，请换一个 request_no",
                            code="request_no_conflict")
    existing = acg_record_by_request(reseller_id=reseller_id, request_no=request_no)
    if existing is None:
        try:
            with transaction.atomic():
                return OpenApiOrder.objects.create(order=order, reseller_id=reseller_id, api_key_id=api_key_pk,
                                                   request_no=request_no, body_digest=body_digest, notify_url="")
        except IntegrityError:  # the same request, answered at the same moment by another process
            existing = acg_record_by_request(reseller_id=reseller_id, request_no=request_no)
            if existing is None:
                raise
    acg_conflict_check(existing, body_digest=body_digest)
    return existing


def acg_order_by_number(*, buyer_id: int, trade_no: str) -> Order | None:
    """The reseller's own Open API order with this number (None for anyone else's, or another channel's)."""
    if not is_public_number(trade_no):
        return None
    return Order.objects.filter(buyer_id=buyer_id, number=trade_no, sales_channel=SALES_CHANNEL_OPENAPI).first()


def acg_order_by_request(*, buyer_id: int, request_no: str) -> Order | None:
    if not REQUEST_NO_RE.fullmatch(request_no):
        return None
    return Order.objects.filter(buyer_id=buyer_id, request_id=request_no,
                                sales_channel=SALES_CHANNEL_OPENAPI).first()
