"""Price and stock sync (价格库存同步) of the suppliers reached through a connector: a periodic pull of each one's
goods list, and signed pushes from the supplier, both landing on one update path.

- The update path (`supplier_offers_apply`) writes each offer whose `upstream_product_id` the upstream names: its
  price (our cost), `upstream_stock` and `synced_at`; offers the upstream does not name keep their values. It keeps
  the latest upstream view in Django's cache (Redis in production), so pages and routing read the database and the
  cache and never call an upstream. A price change never reaches an order already placed: routing copies the
  offer's price onto the top-up attempt (`TopupAttempt.cost`) and the card key (`CardKey.cost`) when it routes.
- An offer whose cost rises above the SKU's selling price is at a loss (`kameng.suppliers.selectors`): routing skips
  it unless staff allowed it (`is_loss_allowed`); the sync logs a warning for staff when an offer turns so, and the
  offer list in the admin filters them.
- A supplier that is down (timeout, refusal, garbled reply) changes nothing: the error and the time are recorded
  on the supplier (`last_sync_error`, `last_sync_at`), the offers keep their last known values.
- Push (`POST /suppliers/push/<supplier_id>/`): a JSON list of `{"product_id", "price", "stock"}` (stock may be
  null or left out: the upstream does not say), headers `X-Kameng-Timestamp` (Unix seconds, within ±300 s of our
  clock) and `X-Kameng-Signature` = hex HMAC-SHA256 keyed with the supplier's `push_secret` (in its connector
  config) over `<timestamp>.<raw body>` — the timestamp is signed too, so an old push cannot be replayed with a new
  one; the same signature is refused a second time. A push that does not verify, or any item that does not
  parse, changes nothing. A supplier id that does not exist or takes no pushes is answered exactly as a bad
  signature is (401), so the ids cannot be enumerated.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from kameng.core.errors import ApplicationError, ConflictError
from kameng.core.masking import mask_text
from kameng.core.money import money
from kameng.suppliers.connectors.base import UpstreamGoods
from kameng.suppliers.connectors.http_config import decimal_or_none
from kameng.suppliers.connectors.registry import connector_config_of, connector_for
from kameng.suppliers.models import ConnectorKind, Supplier, SupplierOffer, SupplierStatus
from kameng.suppliers.selectors import offers_at_loss

logger = logging.getLogger(__name__)

PUSH_SKEW_SECONDS = 300
PUSH_MAX_BYTES = 1_000_000
# Signs a push for a supplier id without a push secret, so that refusing it costs what refusing a forgery does.
_UNKNOWN_PUSH_SECRET = secrets.token_hex(32)
UPSTREAM_VIEW_SECONDS = 24 * 3600


class PushUnauthorizedError(ApplicationError):
    status_code = 401


@dataclass
class SyncResult:
    updated: int = 0  # offers whose price or stock changed
    unchanged: int = 0  # offers named by the upstream with the same values
    unknown_products: list[str] = field(default_factory=list)  # upstream products no offer of ours uses
    now_at_loss: list[int] = field(default_factory=list)  # offers this sync took above the selling price


def upstream_view_key(supplier_id: int) -> str:
    return f"suppliers:upstream:{supplier_id}"


def upstream_view(*, supplier_id: int) -> dict[str, Any]:
    """The latest upstream view of a supplier as the last sync saw it: {"synced_at", "goods": {product_id:
    {"price", "stock", "name"}}}; empty when nothing is cached (read the offers instead)."""
    view = cache.get(upstream_view_key(supplier_id))
    return view if isinstance(view, dict) else {}


def _view_remember(supplier_id: int, goods: Iterable[UpstreamGoods], *, replace: bool) -> None:
    view = {} if replace else upstream_view(supplier_id=supplier_id)
    known: dict[str, Any] = dict(view.get("goods") or {})
    for item in goods:
        known[item.product_id] = {"price": str(item.price), "stock": item.stock, "name": item.name}
    cache.set(upstream_view_key(supplier_id), {"synced_at": timezone.now().isoformat(), "goods": known},
              UPSTREAM_VIEW_SECONDS)


def supplier_offers_apply(*, supplier_id: int, goods: list[UpstreamGoods], is_full_list: bool = True) -> SyncResult:
    """Write what the upstream says onto the supplier's offers (matched by `upstream_product_id`). Called with the
    whole goods list by the pull, with a few items by a push."""
    by_product = {item.product_id: item for item in goods}
    result = SyncResult()
    now = timezone.now()
    with transaction.atomic():
        offers = list(SupplierOffer.objects.filter(supplier_id=supplier_id, upstream_product_id__in=by_product)
                      .select_related("sku").order_by("pk"))
        was_at_loss = {offer.pk for offer in offers_at_loss(offers)}
        changed: list[SupplierOffer] = []
        for offer in offers:
            item = by_product[offer.upstream_product_id]
            price = money(item.price)
            # An upstream that says "not for sale" without a count has none to route to.
            stock = item.stock if item.is_available else 0
            if (offer.price, offer.upstream_stock) == (price, stock):
                result.unchanged += 1
                continue
            offer.price, offer.upstream_stock = price, stock
            changed.append(offer)
        if changed:
            SupplierOffer.objects.bulk_update(changed, ["price", "upstream_stock"])
        SupplierOffer.objects.filter(pk__in=[offer.pk for offer in offers]).update(synced_at=now, updated_at=now)
    result.updated = len(changed)
    used = {offer.upstream_product_id for offer in offers}
    result.unknown_products = sorted(product_id for product_id in by_product if product_id not in used)
    result.now_at_loss = [offer.pk for offer in offers_at_loss(changed) if offer.pk not in was_at_loss]
    for offer in changed:
        if offer.pk in result.now_at_loss:
            # Staff are told in the logs and see it in the admin's offer list (filter "亏本"); routing skips it.
            logger.warning("supplier %s offer %s now costs %s, above the selling price %s of SKU %s: not routed "
                           "unless loss is allowed", supplier_id, offer.pk, offer.price, offer.sku.price,
                           offer.sku_id)
    _view_remember(supplier_id, goods, replace=is_full_list)
    return result


def supplier_sync_pull(*, supplier_id: int) -> SyncResult | None:
    """Pull the goods list of one supplier and apply it; None when the upstream could not be read (the error is
    recorded on the supplier and every offer keeps its last known values). Never called inside a transaction:
    the upstream call may take the connector's whole timeout."""
    supplier = Supplier.objects.filter(pk=supplier_id).first()
    if supplier is None:
        return None
    started = timezone.now()
    try:
        goods = connector_for(supplier).goods_list()
    except Exception as error:  # whatever the connector met: the sync must not stop the others, nor the site
        reason = mask_text(f"{type(error).__name__}: {error}")[:200]
        logger.warning("supplier %s price/stock sync failed: %s", supplier_id, reason)
        Supplier.objects.filter(pk=supplier_id).update(last_sync_at=started, last_sync_error=reason)
        return None
    result = supplier_offers_apply(supplier_id=supplier_id, goods=goods)
    Supplier.objects.filter(pk=supplier_id).update(last_sync_at=started, last_sync_error="")
    logger.info("supplier %s synced: %d offers changed, %d unchanged, %d upstream products unused", supplier_id,
                result.updated, result.unchanged, len(result.unknown_products))
    return result


def suppliers_to_sync() -> list[int]:
    """Approved suppliers reached through a connector (manual stock has nothing to pull)."""
    return list(Supplier.objects.filter(status=SupplierStatus.APPROVED)
                .exclude(connector_kind=ConnectorKind.MANUAL).order_by("pk").values_list("pk", flat=True))


# --- push ------------------------------------------------------------------------------------------------------

def _push_secret(supplier_id: int) -> str:
    """The supplier's push secret; "" when there is no such supplier (or a rejected one) or it takes no pushes."""
    supplier = Supplier.objects.filter(pk=supplier_id).exclude(status=SupplierStatus.REJECTED).first()
    if supplier is None:
        return ""
    try:
        return str(connector_config_of(supplier).get("push_secret") or "")
    except ValueError:  # the stored config is not JSON: staff must fix it; the pusher is told what a stranger is
        logger.exception("push for supplier %s: its connector config cannot be read", supplier_id)
        return ""


def push_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _push_items(body: bytes) -> list[UpstreamGoods]:
    try:
        data = json.loads(body, parse_float=Decimal)
    except ValueError as error:
        raise ApplicationError("推送内容不是 JSON", code="push_invalid") from error
    if not isinstance(data, list) or not data:
        raise ApplicationError("推送内容必须是非空的 JSON 数组：[{product_id, price, stock}]", code="push_invalid")
    items: list[UpstreamGoods] = []
    for index, raw in enumerate(data, start=1):
        items.append(_push_item(index, raw))
    return items


def _push_item(index: int, raw: Any) -> UpstreamGoods:
    product_id = raw.get("product_id") if isinstance(raw, dict) else None
    if not isinstance(product_id, str | int) or isinstance(product_id, bool) or str(product_id).strip() == "":
        raise ApplicationError("第 %(index)s 项缺少 product_id", code="push_invalid", params={"index": index})
    price = decimal_or_none(raw.get("price"))
    if price is None or price <= 0 or price != money(price):
        raise ApplicationError("第 %(index)s 项的价格无效：price 必须是大于 0、最多两位小数的金额", code="push_invalid",
                               params={"index": index})
    stock = raw.get("stock")
    if stock is not None and (not isinstance(stock, int) or isinstance(stock, bool) or stock < 0):
        raise ApplicationError("第 %(index)s 项的库存无效：stock 必须是不小于 0 的整数或 null", code="push_invalid",
                               params={"index": index})
    return UpstreamGoods(product_id=str(product_id).strip(), name="", price=price, stock=stock)


def supplier_push_receive(*, supplier_id: int, body: bytes, timestamp: str, signature: str) -> SyncResult:
    """Verify a signed push and apply it. Raises PushUnauthorizedError (401) for a signature missing or wrong AND for
    a supplier id that does not exist, is rejected or takes no pushes — one answer for all, with the same HMAC work
    done, so the ids cannot be enumerated (the log says which); ApplicationError (400: too large, stale timestamp,
    bad body), ConflictError (409: this very push was already received)."""
    if len(body) > PUSH_MAX_BYTES:  # before the look-up: the answer must not depend on the supplier existing
        raise ApplicationError("推送内容过大（上限 1 MB）", code="push_too_large")
    secret = _push_secret(supplier_id)
    expected = push_signature(secret=secret or _UNKNOWN_PUSH_SECRET, timestamp=timestamp, body=body)
    matches = bool(signature) and hmac.compare_digest(signature.strip().lower().encode("utf-8", "replace"),
                                                      expected.encode())
    if not secret or not matches:
        if not secret:
            logger.warning("push for supplier id %s refused: no such supplier, or it takes no pushes", supplier_id)
        raise PushUnauthorizedError("签名无效：请用该供货商的价格推送密钥签名", code="push_signature_invalid")
    try:
        sent_at = int(timestamp)
    except ValueError as error:
        raise ApplicationError("时间戳无效：X-Kameng-Timestamp 必须是 Unix 秒",
                               code="push_timestamp_invalid") from error
    if abs(time.time() - sent_at) > PUSH_SKEW_SECONDS:
        raise ApplicationError("时间戳与服务器时间相差超过 300 秒，请校准时钟后重新推送", code="push_timestamp_stale")
    items = _push_items(body)
    # Within the accepted window the same signed push could be sent again, and put back an older price.
    if not cache.add(f"suppliers:push-seen:{supplier_id}:{expected}", 1, 2 * PUSH_SKEW_SECONDS + 60):
        raise ConflictError("这条推送已经收到过", code="push_replayed")
    result = supplier_offers_apply(supplier_id=supplier_id, goods=items, is_full_list=False)
    logger.info("supplier %s push: %d offers changed, %d unchanged", supplier_id, result.updated, result.unchanged)
    return result
