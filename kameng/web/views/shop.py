"""Browse the catalogue and buy: one SKU × quantity, paid from the wallet when it covers the total, or with a
payment channel (the order is created unpaid with its keys reserved, then the buyer pays at the gateway).

A direct top-up (直充) product's page carries its form (the phone number or game account to credit, from the
product's template): plain HTML fields that work without JavaScript, posted with the buy form; a refused value is
said next to its field with everything typed kept."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from kameng.accounts.paypin import pin_settings_of
from kameng.catalog.models import Category, DeliveryKind, Product
from kameng.catalog.pricing import SALES_CHANNEL_STOREFRONT, sku_price, subsite_id_of_channel
from kameng.catalog.selectors import categories_visible, products_on_sale, skus_for_sale
from kameng.catalog.topup_forms import TopupInputError, topup_form_of
from kameng.core.device import risk_device_id
from kameng.core.errors import ApplicationError, NotFoundError
from kameng.core.http import client_address
from kameng.core.money import money
from kameng.inventory.selectors import STOCK_CACHE_SECONDS, stock_by_sku
from kameng.membership.pricing import MEMBER_LINE_CODE
from kameng.membership.selectors import buyer_level, lowest_member_price
from kameng.orders.models import OrderStatus
from kameng.orders.services import QUANTITY_INPUT_MAX
from kameng.points.selectors import points_usable
from kameng.purchases.services import PayBy, PaymentChoice, PurchaseResult, purchase_create
from kameng.suppliers.listing import product_supplier_offers
from kameng.web.errors import handles_application_errors, message_for, rejected
from kameng.web.forms import BuyForm, TopupTargetForm, buy_quantity_range, new_request_id
from kameng.web.product_cards import channel_prices, is_direct_topup, is_on_demand, product_cards, sold_upstream
from kameng.web.subsites import sales_channel_of
from kameng.web.views.paying import (
    PIN_FIELD,
    WALLET_METHOD,
    gateway_response,
    is_wallet_method,
    paid_message,
    payment_methods,
    pin_context,
    posted_pin,
)

# The catalogue part of the home page is the same for every visitor: kept as plain data for as long as the stock
# counts are (inventory.selectors.STOCK_CACHE_SECONDS), so a busy home page costs one cache read.
CATALOG_CACHE_SECONDS = STOCK_CACHE_SECONDS
SLUG_RE = re.compile(r"[-a-zA-Z0-9_]{1,60}")


def _catalog(slug: str, sales_channel: str = SALES_CHANNEL_STOREFRONT) -> dict[str, Any]:
    categories: list[dict[str, Any]] = [
        {"pk": category.pk, "name": category.name, "slug": category.slug} for category in categories_visible()
    ]
    current = next((category for category in categories if category["slug"] == slug), None)
    category = Category(pk=current["pk"]) if current else None
    rows = product_cards(products_on_sale(category=category), sales_channel=sales_channel)
    return {"categories": categories, "current": current, "rows": rows}


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    slug = request.GET.get("category", "")
    if not SLUG_RE.fullmatch(slug):
        slug = ""  # unknown shapes show everything, and never make cache keys
    channel = sales_channel_of(request)  # a sub-site's cards show its prices: a catalogue of its own
    key = f"web:catalog:v5:{slug}" if channel == SALES_CHANNEL_STOREFRONT else f"web:catalog:v5:{channel}:{slug}"
    catalog = cache.get_or_set(key, lambda: _catalog(slug, channel), CATALOG_CACHE_SECONDS)
    return render(request, "web/home.html", catalog)


def _product_or_404(product_id: int) -> Product:
    product = products_on_sale().filter(pk=product_id).first()
    if product is None:
        raise NotFoundError("商品不存在或已下架", code="product_not_found")
    return product


def _topup_fields(product: Product, data: Any = None) -> TopupTargetForm | None:
    """The direct top-up form of the product (bound to the posted data, so a refused page keeps what was typed)."""
    template = topup_form_of(delivery_kind=product.delivery_kind, template=product.topup_form)
    return TopupTargetForm(data, topup_form=template) if template else None


def _product_context(product: Product, form: BuyForm | None = None, *, user: Any = None,
                     topup_fields: TopupTargetForm | None = None,
                     sales_channel: str = SALES_CHANNEL_STOREFRONT) -> dict[str, Any]:
    skus = list(product.skus.all())
    stock = stock_by_sku(sku.pk for sku in skus)
    buyer_id = int(user.pk) if user is not None and user.is_authenticated else None
    prices = _sku_prices(skus, buyer_id, sales_channel)
    upstream = sold_upstream(skus if product.delivery_kind == DeliveryKind.CARD_KEY else [], stock)
    if form is None:
        in_stock = next((sku.pk for sku in skus if stock.get(sku.pk, 0) > 0 or is_on_demand(product)
                         or sku.pk in upstream), skus[0].pk if skus else None)
        form = BuyForm(sku_choices=_sku_choices(product), quantity_range=buy_quantity_range(product),
                       initial={"sku": in_stock, "quantity": product.min_quantity, "request_id": new_request_id(),
                                "payment_method": WALLET_METHOD})
    selectable = [sku for sku in skus if stock.get(sku.pk, 0) > 0 or is_on_demand(product) or sku.pk in upstream]
    most = max((money(prices.get(sku.pk, {}).get("price", sku.price) * buy_quantity_range(product)[1])
                for sku in selectable), default=money(0))
    return {**pin_context(user, amount=_form_amount(product, skus, form, prices), most=most),
            "product": product, "form": form, "page_url": reverse("web:product", args=[product.pk]),
            "topup_fields": topup_fields if topup_fields is not None else _topup_fields(product),
            "skus": [{"sku": sku, "stock": stock.get(sku.pk, 0),
                      "on_demand": is_on_demand(product) or sku.pk in upstream,
                      "from_upstream": sku.pk in upstream, "is_direct_topup": is_direct_topup(product),
                      **prices.get(sku.pk, {"price": sku.price})} for sku in skus],
            "in_stock": is_on_demand(product) or any(stock.get(sku.pk, 0) > 0 or sku.pk in upstream for sku in skus),
            # A callable, resolved only when the page is rendered: a successful purchase never reads the channels.
            "payment_methods": partial(payment_methods, amount=_form_amount(product, skus, form, prices)),
            "payment_minutes": settings.KAMENG_ORDER_PAYMENT_MINUTES,
            # The suppliers offering the product (web/_supplier_offers.html), read only when the page is rendered.
            "supplier_offers": partial(product_supplier_offers, product_id=product.pk,
                                       sku_ids=[sku.pk for sku in skus]),
            # A callable too: the buyer's points and the most this order could use (for the form's SKU and quantity).
            "points_info": partial(_points_info, product, skus, form,
                                   user.pk if user is not None and user.is_authenticated else None, sales_channel)}


def _points_info(product: Product, skus: list[Any], form: BuyForm, buyer_id: int | None,
                 sales_channel: str = SALES_CHANNEL_STOREFRONT) -> dict[str, Any] | None:
    chosen = str(form["sku"].value())
    sku = next((sku for sku in skus if str(sku.pk) == chosen), skus[0] if skus else None)
    if buyer_id is None or sku is None:
        return None
    balance, most, offset = points_usable(buyer_id=buyer_id, sku_id=sku.pk, quantity=_form_quantity(product, form),
                                          sales_channel=sales_channel)
    return {"balance": balance, "most": most, "offset": offset}


def _form_quantity(product: Product, form: BuyForm) -> int:
    try:
        quantity = max(int(form["quantity"].value() or product.min_quantity), 1)
    except (TypeError, ValueError):
        quantity = product.min_quantity
    return quantity if quantity <= QUANTITY_INPUT_MAX else product.min_quantity


def _sku_prices(skus: list[Any], buyer_id: int | None,
                sales_channel: str = SALES_CHANNEL_STOREFRONT) -> dict[int, dict[str, Any]]:
    """What each SKU costs the visitor, from the price function (one unit): for a buyer whose level pays less,
    the price and the level's name ("VIP4 价 ¥9.31"); for a visitor not logged in, the retail price and the lowest
    member price as a hint. On a sub-site, the sub-site's price for everyone (no member price there)."""
    if subsite_id_of_channel(sales_channel) is not None:
        return {sku_id: {"price": price} for sku_id, price in
                channel_prices([sku.pk for sku in skus], sales_channel).items()}
    for_sale = skus_for_sale(sku_ids=[sku.pk for sku in skus])
    level = buyer_level(user_id=buyer_id) if buyer_id is not None else None
    prices: dict[int, dict[str, Any]] = {}
    for sku_id, sku in for_sale.items():
        if buyer_id is None:
            lowest = lowest_member_price(sku=sku)
            prices[sku_id] = {"price": sku.price, "member_from": lowest[1] if lowest else None}
            continue
        try:
            quote = sku_price(sku=sku, buyer_id=buyer_id, quantity=1, sales_channel=SALES_CHANNEL_STOREFRONT)
        except ApplicationError:  # the purchase says why; the page shows the retail price
            prices[sku_id] = {"price": sku.price}
            continue
        is_member_price = any(line.code == MEMBER_LINE_CODE for line in quote.lines)
        prices[sku_id] = {"price": quote.unit_price, "retail_price": quote.base_unit_price,
                          "level_name": level.name if is_member_price and level is not None else ""}
    return prices


def _form_amount(product: Product, skus: list[Any], form: BuyForm, prices: dict[int, dict[str, Any]]) -> Any:
    """The total the form stands for (chosen or initial SKU × quantity): the channels listed are those taking it."""
    chosen = str(form["sku"].value())
    sku = next((sku for sku in skus if str(sku.pk) == chosen), skus[0] if skus else None)
    # A quantity the form refuses falls back to the minimum: the page must still render to say so.
    if sku is None:
        return money(0)
    return money(prices.get(sku.pk, {}).get("price", sku.price) * _form_quantity(product, form))


def _sku_choices(product: Product) -> list[tuple[int, str]]:
    return [(sku.pk, sku.name) for sku in product.skus.all()]


@require_GET
@handles_application_errors
def product_detail(request: HttpRequest, product_id: int) -> HttpResponse:
    return render(request, "web/product.html", _product_context(_product_or_404(product_id), user=request.user,
                                                                sales_channel=sales_channel_of(request)))


@sensitive_post_parameters(PIN_FIELD)
@require_http_methods(["GET", "POST"])
@handles_application_errors
def buy(request: HttpRequest, product_id: int) -> HttpResponse:
    product = _product_or_404(product_id)
    if request.method == "GET":  # a reload or a bookmark of the address a refused form was shown at
        return redirect("web:product", product_id=product.pk)
    if not request.user.is_authenticated:  # back to the product page after login, not to this POST-only URL
        return redirect_to_login(reverse("web:product", args=[product.pk]))
    form = BuyForm(request.POST, sku_choices=_sku_choices(product), quantity_range=buy_quantity_range(product))
    topup_fields = _topup_fields(product, request.POST)
    channel = sales_channel_of(request)
    context = _product_context(product, form, user=request.user, topup_fields=topup_fields, sales_channel=channel)
    if not form.is_valid():
        return render(request, "web/product.html", {**context, "error_message": _("请检查规格和数量")}, status=400)
    method = form.cleaned_data["payment_method"]
    payment = (PaymentChoice(PayBy.WALLET_OR_RESERVE, pin=posted_pin(request),
                             pin_settings=pin_settings_of(request.user)) if is_wallet_method(method)
               else PaymentChoice.gateway(method))
    try:
        result = purchase_create(buyer_id=request.user.pk, sku_id=form.cleaned_data["sku"],
                                 quantity=form.cleaned_data["quantity"], payment=payment,
                                 request_id=form.cleaned_data["request_id"] or None,
                                 sales_channel=channel, client_ip=client_address(request),
                                 device_id=risk_device_id(request),
                                 points=form.cleaned_data.get("points") or 0,
                                 buyer_input=topup_fields.buyer_input() if topup_fields is not None else None)
    except ApplicationError as error:
        if error.code == "request_id_reused":
            return _stale_form(request, product, form, topup_fields)
        if isinstance(error, TopupInputError) and topup_fields is not None:
            # Said next to the field, and above the form: the page may be long on a phone.
            topup_fields.add_service_error(field=str(error.extra.get("field", "")), message=message_for(error))
        return rejected(request, "web/product.html", context, error)
    return _purchase_answer(request, result)


def _purchase_answer(request: HttpRequest, result: PurchaseResult) -> HttpResponse:
    order = result.order
    if not result.created:
        messages.info(request, _("该订单已提交过，以下是原订单"))
    elif result.payment is not None:
        return gateway_response(request, result.payment)
    elif result.payment_error is not None:
        # The order exists and keeps its keys until it expires: the buyer can pay it another way on its page.
        messages.error(request, _("无法发起支付：%(reason)s。订单已保留，可在订单页换一种方式支付")
                       % {"reason": message_for(result.payment_error)})
    elif order.status == OrderStatus.PENDING_PAYMENT:
        messages.warning(request, _("余额不足，订单已创建并为您保留库存，请在 %(minutes)s 分钟内完成支付")
                         % {"minutes": settings.KAMENG_ORDER_PAYMENT_MINUTES})
    elif order.status == OrderStatus.DELIVERED:
        messages.success(request, _("购买成功，卡密已发放"))
    else:
        messages.success(request, paid_message(order, _("支付成功，订单正在处理，发货后会显示在订单页")))
    return redirect(reverse("web:order_detail", args=[order.number]))


def _stale_form(request: HttpRequest, product: Product, form: BuyForm,
                topup_fields: TopupTargetForm | None) -> HttpResponse:
    """The form's request id already made an order for another SKU or quantity (an old tab, the back button, the
    form changed after it was sent once): show the product page again, the buyer's choices kept, with a fresh id."""
    fresh = BuyForm(sku_choices=_sku_choices(product), quantity_range=buy_quantity_range(product),
                    initial={**form.cleaned_data, "request_id": new_request_id()})
    return render(request, "web/product.html", {
        **_product_context(product, fresh, user=request.user, topup_fields=topup_fields,
                           sales_channel=sales_channel_of(request)),
        "error_code": "request_id_reused",
        "error_message": _("页面已过期：这张表单已经提交过另一笔订单。请确认规格和数量后重新提交"),
    }, status=409)
