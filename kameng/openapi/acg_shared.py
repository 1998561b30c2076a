"""The acg-faka 店铺共享 (shared shop) endpoints: an existing 异次元发卡 (acg-faka) site docks onto kameng as its
upstream and resells our SKUs, paid from the reseller's wallet. Mounted at /openapi/acg/ (kameng.openapi.acg_urls);
in acg-faka's 店铺共享 form the 店铺地址 is `https://<this site>/openapi/acg`, 商户ID an Open API key id, 商户密钥
its secret (the reseller's console, 「API 密钥」).

Weaker than the Open API v1 (no timestamp or nonce, the secret in every body, MD5; see kameng.resellers.acg_shared),
so staff can turn it off: KAMENG_ACG_SHARED_ENABLED (off → every path answers 404).

The protocol, as acg-faka's client calls it (all form POSTs, the signature fields `app_id`, `app_key`, `sign` in
every one; replies JSON `{"code": 200, "msg": "success", "data": …}`):
- shared/authentication/connect → `{shopName, balance}`;
- shared/commodity/items → categories `[{id, name, children: [item…]}]`, each item one of our SKUs (acg-faka's
  商品): `code` (its shared_code: our SKU id), `name`, `description`, `price` and `user_price` (retail), and
  `factory_price` (the reseller's cost: the price function for the reseller on the "openapi" sales channel, so its
  tier), `delivery_way` (0 = automatic card keys, 1 = anything else), `widget` (a direct top-up's form as acg-faka
  widgets), `minimum`, `cover` and acg-faka's flags all 0; plus `stock` and `delivery_kind` of ours (a card-key
  SKU's stock: its keys here plus what its upstream offers sell at the reseller's cost, as the Open API says);
- shared/commodity/item (`sharedCode`) → the same list holding that one item;
- shared/commodity/inventory (`sharedCode`, `race`) → `{count, delivery_way, draft_status, price, user_price,
  config, factory_price, is_category}` (`race` is ignored: a SKU has no sub-kinds);
- shared/commodity/inventoryState (`shared_code`, `card_id`, `num`, `race`) → success, or an error "库存不足";
- shared/commodity/trade (`shared_code`, `contact`, `num`, `request_no`, the direct top-up's fields by name;
  `card_id`, `device`, `password`, `race` accepted and ignored) → `{url: "", amount, tradeNo, secret}`, `secret`
  the delivered card keys one a line (or a line saying the order is being fulfilled); paid from the wallet,
  password-free (the signature authorises it), and idempotent by `request_no`;
- shared/commodity/query (`tradeNo`; or `request_no`, ours) → `{secret, widget: null, status}` (1 = paid);
- shared/commodity/draftCard → refused: no card preselection here.
Errors are HTTP 200 with `{"code": <not 200>, "msg": "…", "data": null, "error": "<our code>"}` as acg-faka answers
(its client shows `msg` and only tests `code != 200`); `code` is the HTTP status the Open API would use (401 key or
signature, 403 reseller or IP, 404 unknown SKU or order, 409 sold out, insufficient balance, request_no reused with
another body, 400/422 bad input), where acg-faka itself always sends 0. Only a disabled endpoint (404), a method
other than POST (405), an oversized form (400) and the database out of reach (503) change the HTTP status.

Deliberate differences from acg-faka as an upstream: `request_no` is required (acg-faka sends its own order number
there; a trade without one could not be retried safely), and the same `request_no` again answers the same order and
its keys, where acg-faka refuses it ("The request ID already exists") — a downstream that timed out gets its keys
instead of an error, and is never charged twice. The buyer's `contact` is not stored (the reseller is the buyer).

Where each fact was checked, GitHub lizhipay/acg-faka (its default branch as stored for code search):
- the paths and the fields the client sends, `trade` reading `data.secret`, the `domain` + path joining:
  app/Service/Impl/SharedService.php (`connect`, `items`, `inventoryState`, `trade`, `draftCard`, `inventory`);
- the 店铺地址 trimmed of "/" and joined to the paths, `connect` reading shopName and balance, the item fields the
  importer copies (name, description, price, factory_price, cover prefixed with the 店铺地址, delivery_way,
  contact_type, password_status, sort, code, seckill_status, draft_status, inventory_hidden, only_user,
  purchase_count, widget, minimum, config): app/Controller/Admin/Api/Store.php (`save`, `addItem`);
- the server's replies (items grouped by category with `children` and `factory_price`; `item` by `sharedCode`;
  inventory's fields; inventoryState's "库存不足"; trade forcing balance payment; query by `tradeNo` answering
  secret, widget, status; draftCard): app/Controller/Shared/Commodity.php and
  app/Controller/Shared/Authentication.php;
- trade's data `{url, amount, tradeNo, secret}`, the secret's keys joined by newlines, a reused request_no refused:
  app/Service/Impl/OrderService.php (`trade`, `pullCardForLocal`);
- the widget format (cn, name, placeholder, type, regex, error, dict comma-separated): SharedService.php
  `createV4Item`;
- the reply `{code, msg, data}` (Base/API/Shared.php `json`) and errors as `{code: 0, msg}` with HTTP 200
  (kernel/Kernel.php, JSONException caught).
Unverified: how acg-faka's widget types other than text and select render (we only send those two), and whether
every acg-faka version sends `request_no` (older ones may not, and are refused with a message saying so).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils.cache import patch_cache_control
from django.views.decorators.csrf import csrf_exempt

from kameng.accounts.paypin import NO_PIN
from kameng.catalog.models import DeliveryKind
from kameng.catalog.pricing import SALES_CHANNEL_OPENAPI, sku_price
from kameng.catalog.selectors import products_on_sale, skus_for_sale, topup_form_for_sku
from kameng.catalog.topup_forms import SELECT, form_primary_field, topup_form_of
from kameng.core.errors import (
    DATABASE_UNAVAILABLE_ERRORS,
    DATABASE_UNAVAILABLE_MESSAGE,
    ApplicationError,
    ConflictError,
    NotFoundError,
)
from kameng.core.http import client_address
from kameng.core.ids import DATABASE_ID_MAX
from kameng.inventory.selectors import secrets_for_order, stock_by_sku_now
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import QUANTITY_INPUT_MAX
from kameng.orders.state import KEYS_VISIBLE
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from kameng.resellers.acg_shared import (
    REQUEST_NO_RE,
    AcgCaller,
    acg_body_digest,
    acg_caller_verify,
    acg_conflict_check,
    acg_order_by_number,
    acg_order_by_request,
    acg_order_record,
    acg_record_by_request,
)
from kameng.suppliers.routing import upstream_stock_by_sku
from kameng.suppliers.upstream_cards import card_key_stock

OK = 200
ON_DEMAND_STOCK = 9999  # made to order (direct top-up, manual delivery): no card-key stock to run out of
PAYMENT = PaymentChoice(PayBy.WALLET, pin_settings=NO_PIN)  # password-free: the signature authorises it
SKU_CODE_RE = re.compile(r"[0-9]{1,19}", re.ASCII)
QUANTITY_RE = re.compile(r"[0-9]{1,9}", re.ASCII)
MEDIA_PREFIX = "/media/"  # covers: acg-faka prefixes them with the 店铺地址, so they go through acg_urls' redirect
COVER_DIRECTORY = "products/"

Handler = Callable[[HttpRequest, Mapping[str, str], AcgCaller], Any]


# --- Replies -----------------------------------------------------------------------------------------------------

def _reply(code: int, msg: str, data: Any = None, *, error: str = "", status: int = 200) -> JsonResponse:
    body: dict[str, Any] = {"code": code, "msg": msg, "data": data}
    if error:
        body["error"] = error
    response = JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})
    patch_cache_control(response, no_store=True, private=True)  # may carry card keys or a balance
    return response


def _refusal(error: ApplicationError) -> JsonResponse:
    code = error.status_code if error.status_code != OK else 400
    return _reply(code, error.message, error=error.code)


def _endpoint(handler: Handler) -> Callable[[HttpRequest], HttpResponse]:
    """The shared-shop view around `handler`: on only while enabled, POST only, the form read as PHP reads $_POST
    (the last value of a repeated field), the caller verified, every refusal in the protocol's shape."""

    @csrf_exempt
    def view(request: HttpRequest) -> HttpResponse:
        if not settings.KAMENG_ACG_SHARED_ENABLED:
            return _reply(404, "本站未开启异次元发卡店铺共享对接，请改用开放接口 v1", error="acg_shared_disabled",
                          status=404)
        if request.method != "POST":
            response = _reply(405, "请用 POST 提交表单", error="method_not_allowed", status=405)
            response["Allow"] = "POST"
            return response
        try:
            params = {name: request.POST[name] for name in request.POST}
        except SuspiciousOperation:  # too large or too many fields (Django's limits)
            return _reply(400, "请求内容过大或字段过多", error="request_too_large", status=400)
        try:
            caller = acg_caller_verify(params=params, client_ip=client_address(request))
            return _reply(OK, "success", handler(request, params, caller))
        except ApplicationError as error:
            return _refusal(error)
        except DATABASE_UNAVAILABLE_ERRORS:
            response = _reply(503, DATABASE_UNAVAILABLE_MESSAGE, error="service_unavailable", status=503)
            response["Retry-After"] = "5"
            return response

    view.__name__ = handler.__name__
    view.__doc__ = handler.__doc__
    return view


# --- Input -------------------------------------------------------------------------------------------------------

def _sku_id(value: str) -> int:
    """A shared_code: our SKU id as decimal digits."""
    value = value.strip()
    if not value:
        raise ApplicationError("商品代码不能为空", code="shared_code_required")
    if not SKU_CODE_RE.fullmatch(value) or not 0 < int(value) <= DATABASE_ID_MAX:
        raise NotFoundError("商品不存在或已下架", code="sku_not_found")
    return int(value)


def _quantity(value: str) -> int:
    value = value.strip()
    if not QUANTITY_RE.fullmatch(value) or not 1 <= int(value) <= QUANTITY_INPUT_MAX:
        raise ApplicationError("购买数量 num 必须是 1 到 %(max)s 之间的整数", code="invalid_quantity",
                               params={"max": QUANTITY_INPUT_MAX}, status_code=422)
    return int(value)


# --- The catalogue -----------------------------------------------------------------------------------------------

def _catalogue(caller: AcgCaller, *, sku_id: int | None = None) -> list[dict[str, Any]]:
    """Categories with their SKUs on sale as acg-faka items, at the reseller's cost. A SKU the price rules leave
    nothing to pay for is not listed (it could not be bought)."""
    products = products_on_sale()
    if sku_id is not None:
        products = products.filter(skus__pk=sku_id)
    pairs = [(product, sku) for product in products for sku in product.skus.all()
             if sku_id is None or sku.pk == sku_id]
    for_sale = skus_for_sale(sku_ids=[sku.pk for _, sku in pairs])
    costs: dict[int, Decimal] = {}
    for pk, for_sku in for_sale.items():
        try:
            costs[pk] = sku_price(sku=for_sku, buyer_id=caller.user_id, quantity=1,
                                  sales_channel=SALES_CHANNEL_OPENAPI).unit_price
        except ApplicationError:
            continue
    # A card-key SKU's keys on the platform plus what its upstream offers sell at the reseller's cost.
    stock = card_key_stock(unit_prices={pk: cost for pk, cost in costs.items()
                                        if for_sale[pk].delivery_kind == DeliveryKind.CARD_KEY})
    categories: dict[int, dict[str, Any]] = {}
    for product, sku in pairs:
        offer = for_sale.get(sku.pk)
        if offer is None or sku.pk not in costs:
            continue
        is_card_key = offer.delivery_kind == DeliveryKind.CARD_KEY
        category = categories.setdefault(product.category_id, {"id": product.category_id,
                                                               "name": product.category.name, "children": []})
        category["children"].append({
            "id": offer.sku_id, "code": str(offer.sku_id), "name": offer.title, "description": product.description,
            "price": str(offer.price), "user_price": str(offer.price), "factory_price": str(costs[sku.pk]),
            "cover": f"{MEDIA_PREFIX}{product.picture.name}" if product.picture else "",
            "delivery_way": 0 if is_card_key else 1, "contact_type": 0, "password_status": 0,
            "sort": product.sort_order, "seckill_status": 0, "draft_status": 0, "inventory_hidden": 0,
            "only_user": 0, "purchase_count": 0, "minimum": offer.min_quantity, "maximum": offer.max_quantity,
            "widget": _widget(product.delivery_kind, product.topup_form), "config": "", "status": 1,
            "api_status": 1, "stock": stock.get(offer.sku_id, 0) if is_card_key else ON_DEMAND_STOCK,
            "delivery_kind": offer.delivery_kind,
        })
    return list(categories.values())


def _widget(delivery_kind: str, template: Any) -> str:
    """A direct top-up's form as acg-faka widgets (a JSON string): text fields and selects; the check of the
    values stays ours, at the trade (so no `regex` for acg-faka to apply with its own dialect)."""
    try:
        form = topup_form_of(delivery_kind=delivery_kind, template=template)
    except ApplicationError:  # a form broken in the database: the trade will say so
        return "[]"
    widgets = [{"cn": field["label"], "name": field["name"], "placeholder": field["label"],
                "type": "select" if field["kind"] == SELECT else "text", "regex": "",
                "error": f"{field['label']}格式不正确", "dict": ",".join(field.get("options") or [])}
               for field in form]
    return json.dumps(widgets, ensure_ascii=False)


def _one_offer(caller: AcgCaller, sku_id: int) -> dict[str, Any]:
    found = _catalogue(caller, sku_id=sku_id)
    if not found:
        raise NotFoundError("商品不存在或已下架", code="sku_not_found")
    item: dict[str, Any] = found[0]["children"][0]
    return item


# --- Handlers ----------------------------------------------------------------------------------------------------

def connect(request: HttpRequest, params: Mapping[str, str], caller: AcgCaller) -> dict[str, Any]:
    """店铺名称与代理钱包余额。"""
    return {"shopName": settings.KAMENG_ACG_SHARED_SHOP_NAME, "balance": str(wallet_balance(user_id=caller.user_id))}


def items(request: HttpRequest, params: Mapping[str, str], caller: AcgCaller) -> list[dict[str, Any]]:
    """在售商品（按分类），含拿货价 factory_price。"""
    return _catalogue(caller)


def item(request: HttpRequest, params: Mapping[str, str], caller: AcgCaller) -> list[dict[str, Any]]:
    """一个商品（sharedCode）。"""
    if not params.get("sharedCode", "").strip():
        raise ApplicationError("对接CODE不能为空", code="shared_code_required")
    found = _catalogue(caller, sku_id=_sku_id(params["sharedCode"]))
    if not found:
        raise NotFoundError("商品不存在或已下架", code="sku_not_found")
    return found


def inventory(request: HttpRequest, params: Mapping[str, str], caller: AcgCaller) -> dict[str, Any]:
    """库存与价格（sharedCode）。"""
    offer = _one_offer(caller, _sku_id(params.get("sharedCode", "")))
    return {"count": offer["stock"], "delivery_way": offer["delivery_way"], "draft_status": 0,
            "price": offer["price"], "user_price": offer["user_price"], "config": "",
            "factory_price": offer["factory_price"], "is_category": False}


def inventory_state(request: HttpRequest, params: Mapping[str, str], caller: AcgCaller) -> list[Any]:
    """下单前的库存检查（shared_code, num）。"""
    sku_id = _sku_id(params.get("shared_code", ""))
    quantity = _quantity(params.get("num", ""))
    offer = skus_for_sale(sku_ids=[sku_id]).get(sku_id)
    if offer is None:
        raise NotFoundError("商品不存在或已下架", code="sku_not_found")
    if offer.delivery_kind == DeliveryKind.CARD_KEY and stock_by_sku_now([sku_id]).get(sku_id, 0) < quantity:
        # Not enough keys here: an upstream offer may still sell them at the reseller's cost, as the trade would.
        cost = sku_price(sku=offer, buyer_id=caller.user_id, quantity=1, sales_channel=SALES_CHANNEL_OPENAPI)
        if upstream_stock_by_sku(unit_prices={sku_id: cost.unit_price}).get(sku_id, 0) < quantity:
            raise ConflictError("库存不足", code="sold_out")
    return []


def trade(request: HttpRequest, params: Mapping[str, str], caller: AcgCaller) -> dict[str, Any]:
    """下单：从代理钱包扣款（免密），卡密商品立即返回卡密；同一 request_no 重发返回同一订单，不重复扣款。"""
    sku_id = _sku_id(params.get("shared_code", ""))
    quantity = _quantity(params.get("num", ""))
    request_no = params.get("request_no", "")
    if not REQUEST_NO_RE.fullmatch(request_no):
        raise ApplicationError("request_no 必须是 1–64 位字母、数字、_ 或 -：请升级异次元发卡到会传 request_no 的版本",
                               code="invalid_request_no", status_code=422)
    found = topup_form_for_sku(sku_id=sku_id)
    if found is None:
        raise NotFoundError("商品不存在或已下架", code="sku_not_found")
    delivery_kind, form = found
    buyer_input: dict[str, str] | None = None
    recharge_account = ""
    if delivery_kind == DeliveryKind.DIRECT_TOPUP:
        buyer_input = {str(field["name"]): params.get(str(field["name"]), "") for field in form}
        recharge_account = buyer_input.get(form_primary_field(form), "")
    digest = acg_body_digest(sku_id=sku_id, quantity=quantity, recharge_account=recharge_account)
    record = acg_record_by_request(reseller_id=caller.reseller_id, request_no=request_no)
    if record is not None:  # the same request again: answered without touching the checkout
        acg_conflict_check(record, body_digest=digest)
        return _trade_out(record.order)
    try:
        result = purchase_create(buyer_id=caller.user_id, sku_id=sku_id, quantity=quantity, payment=PAYMENT,
                                 request_id=request_no, sales_channel=SALES_CHANNEL_OPENAPI,
                                 client_ip=client_address(request), buyer_input=buyer_input)
    except ConflictError as error:
        if error.code == "request_id_reused":
            raise ConflictError("该 request_no 已用于另一笔订单（商品、数量或充值信息不同），请换一个 request_no",
                                code="request_no_conflict") from error
        raise
    acg_order_record(order=result.order, reseller_id=caller.reseller_id, api_key_pk=caller.api_key_pk,
                     request_no=request_no, body_digest=digest)
    return _trade_out(result.order, result.secrets)


def query(request: HttpRequest, params: Mapping[str, str], caller: AcgCaller) -> dict[str, Any]:
    """按订单号（tradeNo）或 request_no 查询自己的订单。"""
    trade_no = params.get("tradeNo", "").strip()
    request_no = params.get("request_no", "").strip()
    if not trade_no and not request_no:
        raise ApplicationError("订单号 tradeNo 不能为空", code="trade_no_required")
    order = (acg_order_by_number(buyer_id=caller.user_id, trade_no=trade_no) if trade_no
             else acg_order_by_request(buyer_id=caller.user_id, request_no=request_no))
    if order is None:
        raise NotFoundError("订单不存在", code="order_not_found")
    return {"secret": _secret_text(order), "widget": None, "status": 1 if order.paid_at else 0,
            "tradeNo": order.number, "request_no": order.request_id or "", "order_status": order.status}


def draft_card(request: HttpRequest, params: Mapping[str, str], caller: AcgCaller) -> None:
    """预选卡密：不支持。"""
    raise ApplicationError("本站商品不支持预选卡密", code="draft_not_supported")


def _trade_out(order: Order, secrets: list[str] | None = None) -> dict[str, Any]:
    return {"url": "", "amount": str(order.total_amount), "tradeNo": order.number,
            "secret": _secret_text(order, secrets), "request_no": order.request_id or "",
            "order_status": order.status}


def _secret_text(order: Order, secrets: list[str] | None = None) -> str:
    """The keys one a line, as acg-faka stores them for its buyer; else a line saying where the order stands."""
    if secrets is None:
        secrets = secrets_for_order(order_id=order.pk) if order.status in KEYS_VISIBLE else []
    if secrets:
        return "\n".join(secrets)
    if order.status in (OrderStatus.DELIVERY_FAILED, OrderStatus.REFUNDED, OrderStatus.CANCELLED,
                        OrderStatus.EXPIRED):
        return f"上游订单 {order.number} 未能发货（{order.get_status_display()}），货款已按规则退回，请联系客服"
    return f"上游订单 {order.number} 已付款，正在发货中，请稍后查询"


def cover(request: HttpRequest, name: str) -> HttpResponse:
    """A product picture named by an item's `cover` (which acg-faka prefixes with the 店铺地址): sent on to where
    the storage serves it."""
    if not settings.KAMENG_ACG_SHARED_ENABLED or not name.startswith(COVER_DIRECTORY) or ".." in name:
        return _reply(404, "图片不存在", error="not_found", status=404)
    return HttpResponseRedirect(default_storage.url(name))


connect_view = _endpoint(connect)
items_view = _endpoint(items)
item_view = _endpoint(item)
inventory_view = _endpoint(inventory)
inventory_state_view = _endpoint(inventory_state)
trade_view = _endpoint(trade)
query_view = _endpoint(query)
draft_card_view = _endpoint(draft_card)
