"""Browse the catalogue and buy: one SKU × quantity, paid from the wallet when it covers the total, or with a
payment channel (the order is created unpaid with its keys reserved, then the buyer pays at the gateway)."""

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
from django.views.decorators.http import require_GET, require_http_methods

from kameng.catalog.models import Category, Product
from kameng.catalog.selectors import categories_visible, products_on_sale
from kameng.core.errors import ApplicationError, NotFoundError
from kameng.core.money import money
from kameng.inventory.selectors import STOCK_CACHE_SECONDS, stock_by_sku
from kameng.ledger.selectors import wallet_balance
from kameng.ledger.services import InsufficientFundsError
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import QUANTITY_INPUT_MAX, CheckoutResult, order_checkout
from kameng.web.errors import handles_application_errors, message_for, rejected
from kameng.web.forms import BuyForm, buy_quantity_range, new_request_id
from kameng.web.product_cards import product_cards
from kameng.web.views.paying import (
    WALLET_METHOD,
    channel_for_amount,
    gateway_response,
    is_wallet_method,
    payment_methods,
    start_order_payment,
)

# The catalogue part of the home page is the same for every visitor: kept as plain data for as long as the stock
# counts are (inventory.selectors.STOCK_CACHE_SECONDS), so a busy home page costs one cache read.
CATALOG_CACHE_SECONDS = STOCK_CACHE_SECONDS
SLUG_RE = re.compile(r"[-a-zA-Z0-9_]{1,60}")


def _catalog(slug: str) -> dict[str, Any]:
    categories: list[dict[str, Any]] = [
        {"pk": category.pk, "name": category.name, "slug": category.slug} for category in categories_visible()
    ]
    current = next((category for category in categories if category["slug"] == slug), None)
    category = Category(pk=current["pk"]) if current else None
    rows = product_cards(products_on_sale(category=category))
    return {"categories": categories, "current": current, "rows": rows}


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    slug = request.GET.get("category", "")
    if not SLUG_RE.fullmatch(slug):
        slug = ""  # unknown shapes show everything, and never make cache keys
    catalog = cache.get_or_set(f"web:catalog:v3:{slug}", lambda: _catalog(slug), CATALOG_CACHE_SECONDS)
    return render(request, "web/home.html", catalog)


def _product_or_404(product_id: int) -> Product:
    product = products_on_sale().filter(pk=product_id).first()
    if product is None:
        raise NotFoundError("商品不存在或已下架", code="product_not_found")
    return product


def _product_context(product: Product, form: BuyForm | None = None) -> dict[str, Any]:
    skus = list(product.skus.all())
    stock = stock_by_sku(sku.pk for sku in skus)
    if form is None:
        in_stock = next((sku.pk for sku in skus if stock.get(sku.pk, 0) > 0), skus[0].pk if skus else None)
        form = BuyForm(sku_choices=_sku_choices(product), quantity_range=buy_quantity_range(product),
                       initial={"sku": in_stock, "quantity": product.min_quantity, "request_id": new_request_id(),
                                "payment_method": WALLET_METHOD})
    return {"product": product, "form": form, "page_url": reverse("web:product", args=[product.pk]),
            "skus": [{"sku": sku, "stock": stock.get(sku.pk, 0)} for sku in skus],
            "in_stock": any(stock.get(sku.pk, 0) > 0 for sku in skus),
            # A callable, resolved only when the page is rendered: a successful purchase never reads the channels.
            "payment_methods": partial(payment_methods, amount=_form_amount(product, skus, form)),
            "payment_minutes": settings.KAMENG_ORDER_PAYMENT_MINUTES}


def _form_amount(product: Product, skus: list[Any], form: BuyForm) -> Any:
    """The total the form stands for (chosen or initial SKU × quantity): the channels listed are those taking it."""
    chosen = str(form["sku"].value())
    sku = next((sku for sku in skus if str(sku.pk) == chosen), skus[0] if skus else None)
    try:
        quantity = max(int(form["quantity"].value() or product.min_quantity), 1)
    except (TypeError, ValueError):
        quantity = product.min_quantity
    if quantity > QUANTITY_INPUT_MAX:  # the form refuses it; the page must still render to say so
        quantity = product.min_quantity
    return money(sku.price * quantity) if sku is not None else money(0)


def _sku_choices(product: Product) -> list[tuple[int, str]]:
    return [(sku.pk, sku.name) for sku in product.skus.all()]


@require_GET
@handles_application_errors
def product_detail(request: HttpRequest, product_id: int) -> HttpResponse:
    return render(request, "web/product.html", _product_context(_product_or_404(product_id)))


def _checkout(*, buyer_id: int, sku_id: int, price: Any, quantity: int, request_id: str | None) -> CheckoutResult:
    """Pay from the wallet when it covers the total, otherwise leave the order waiting for payment (keys held)."""
    covered = wallet_balance(user_id=buyer_id) >= money(price * quantity)
    try:
        return order_checkout(buyer_id=buyer_id, sku_id=sku_id, quantity=quantity, request_id=request_id,
                              pay_with_wallet=covered)
    except InsufficientFundsError:  # spent elsewhere between the look and the debit
        return order_checkout(buyer_id=buyer_id, sku_id=sku_id, quantity=quantity, request_id=request_id,
                              pay_with_wallet=False)


@require_http_methods(["GET", "POST"])
@handles_application_errors
def buy(request: HttpRequest, product_id: int) -> HttpResponse:
    product = _product_or_404(product_id)
    if request.method == "GET":  # a reload or a bookmark of the address a refused form was shown at
        return redirect("web:product", product_id=product.pk)
    if not request.user.is_authenticated:  # back to the product page after login, not to this POST-only URL
        return redirect_to_login(reverse("web:product", args=[product.pk]))
    form = BuyForm(request.POST, sku_choices=_sku_choices(product), quantity_range=buy_quantity_range(product))
    context = _product_context(product, form)
    if not form.is_valid():
        return render(request, "web/product.html", {**context, "error_message": _("请检查规格和数量")}, status=400)
    sku = next(sku for sku in product.skus.all() if sku.pk == form.cleaned_data["sku"])
    quantity = form.cleaned_data["quantity"]
    method = form.cleaned_data["payment_method"]
    request_id = form.cleaned_data["request_id"] or None
    try:
        if is_wallet_method(method):
            result = _checkout(buyer_id=request.user.pk, sku_id=sku.pk, price=sku.price, quantity=quantity,
                               request_id=request_id)
        else:
            # Checked before the order exists, so a disabled channel or an amount it refuses reserves nothing.
            channel_for_amount(code=method, amount=money(sku.price * quantity))
            result = order_checkout(buyer_id=request.user.pk, sku_id=sku.pk, quantity=quantity,
                                    request_id=request_id, pay_with_wallet=False)
    except ApplicationError as error:
        if error.code == "request_id_reused":
            return _stale_form(request, product, form)
        return rejected(request, "web/product.html", context, error)
    return _checkout_answer(request, result, method)


def _checkout_answer(request: HttpRequest, result: CheckoutResult, method: str) -> HttpResponse:
    order = result.order
    if result.created and not is_wallet_method(method):
        return _pay_new_order(request, order, method)
    if not result.created:
        messages.info(request, _("该订单已提交过，以下是原订单"))
    elif order.status == OrderStatus.PENDING_PAYMENT:
        messages.warning(request, _("余额不足，订单已创建并为您保留库存，请在 %(minutes)s 分钟内完成支付")
                         % {"minutes": settings.KAMENG_ORDER_PAYMENT_MINUTES})
    else:
        messages.success(request, _("购买成功，卡密已发放"))
    return redirect(reverse("web:order_detail", args=[order.number]))


def _stale_form(request: HttpRequest, product: Product, form: BuyForm) -> HttpResponse:
    """The form's request id already made an order for another SKU or quantity (an old tab, the back button, the
    form changed after it was sent once): show the product page again, the buyer's choices kept, with a fresh id."""
    fresh = BuyForm(sku_choices=_sku_choices(product), quantity_range=buy_quantity_range(product),
                    initial={**form.cleaned_data, "request_id": new_request_id()})
    return render(request, "web/product.html", {
        **_product_context(product, fresh), "error_code": "request_id_reused",
        "error_message": _("页面已过期：这张表单已经提交过另一笔订单。请确认规格和数量后重新提交"),
    }, status=409)


def _pay_new_order(request: HttpRequest, order: Order, channel_code: str) -> HttpResponse:
    try:
        started = start_order_payment(request, order=order, channel_code=channel_code)
    except ApplicationError as error:
        # The order exists and keeps its keys until it expires: the buyer can pay it another way on its page.
        messages.error(request, _("无法发起支付：%(reason)s。订单已保留，可在订单页换一种方式支付")
                       % {"reason": message_for(error)})
        return redirect(reverse("web:order_detail", args=[order.number]))
    return gateway_response(request, started)
