"""Batch purchase (批量采购): an active reseller buys up to KAMENG_BATCH_PURCHASE_MAX units of one SKU in one order,
paid from its wallet, and downloads the delivered keys as a TXT or CSV file.

The order goes through the one purchase service (kameng.purchases.services.purchase_create) on the "batch" sales
channel, priced at the reseller's price and paid from the wallet (the PIN rules of any wallet payment apply: above
the password-free limit the PIN is asked). The product's own max_quantity is the storefront's limit per order and
does not bound a batch (kameng.orders.checkout.checkout_quantity_upper); KAMENG_BATCH_PURCHASE_MAX does. Card keys in
stock are delivered at once (claimed in one statement); a manual product's order completes later and is shown.
Direct top-ups need the account to credit for each unit and are not offered here.

The key files are served to the order's buyer only (404 for anyone else), streamed, never cached.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.validators import MaxValueValidator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from kameng.accounts.paypin import pin_settings_of
from kameng.catalog.models import DeliveryKind
from kameng.catalog.pricing import SALES_CHANNEL_BATCH, sku_price
from kameng.catalog.selectors import products_on_sale, skus_for_sale
from kameng.core.device import risk_device_id
from kameng.core.errors import ApplicationError, ConflictError
from kameng.core.http import client_address
from kameng.core.money import ZERO, money
from kameng.inventory.selectors import secrets_for_order
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import ORDER_TOTAL_MAX, Order, OrderStatus
from kameng.orders.selectors import order_of_buyer
from kameng.orders.state import IN_PROGRESS, KEYS_VISIBLE
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from kameng.web.errors import message_for, status_for
from kameng.web.forms import new_request_id
from kameng.web.views.paying import PIN_FIELD, pin_context, posted_pin
from kameng.web.views.reseller_console import (
    RESELLER_CONSOLE_NAV,
    ResellerRequest,
    console_render,
    reseller_required,
)

RESELLER_CONSOLE_NAV.append(("web:reseller_batch", gettext_lazy("批量采购")))
BATCH_KINDS = frozenset({DeliveryKind.CARD_KEY, DeliveryKind.MANUAL})
RECENT_ORDERS = 20
KEY_FILE_FORMATS = frozenset({"txt", "csv"})
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def batch_sku_choices(*, buyer_id: int | None = None) -> list[tuple[int, str]]:
    """(SKU id, "product · SKU") of every enabled SKU of an on-sale card-key or manual product; with `buyer_id`,
    "product · SKU · ¥unit price" at that buyer's batch price, so the reseller sees what it pays before it buys."""
    choices = [(sku.pk, f"{product.name} · {sku.name}")
               for product in products_on_sale().filter(delivery_kind__in=BATCH_KINDS).order_by("sort_order", "pk")
               for sku in product.skus.all()]
    if buyer_id is None:
        return choices
    for_sale = skus_for_sale(sku_ids=[sku_id for sku_id, _label in choices])
    priced = []
    for sku_id, label in choices:
        sku = for_sale.get(sku_id)
        try:
            price = (sku_price(sku=sku, buyer_id=buyer_id, quantity=1, sales_channel=SALES_CHANNEL_BATCH).unit_price
                     if sku is not None else None)
        except ApplicationError:
            price = None
        priced.append((sku_id, f"{label} · ¥{price}" if price is not None else label))
    return priced


class BatchPurchaseForm(forms.Form):
    sku = forms.TypedChoiceField(label=gettext_lazy("商品规格"), coerce=int, choices=[])
    quantity = forms.IntegerField(label=gettext_lazy("数量"), min_value=1)
    request_id = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)

    def __init__(self, *args: Any, buyer_id: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        most = int(settings.KAMENG_BATCH_PURCHASE_MAX)
        sku = self.fields["sku"]
        assert isinstance(sku, forms.TypedChoiceField)
        sku.choices = batch_sku_choices(buyer_id=buyer_id)
        quantity = self.fields["quantity"]
        assert isinstance(quantity, forms.IntegerField)
        quantity.max_value = most
        quantity.validators.append(MaxValueValidator(most))
        quantity.widget.attrs.update({"min": 1, "max": most})
        quantity.help_text = _("每单最多 %(max)s 件，从钱包余额支付") % {"max": most}


def _page(request: ResellerRequest, form: BatchPurchaseForm, *, status: int = 200,
          error: ApplicationError | None = None) -> HttpResponse:
    sku_id = form["sku"].value()
    quote = None
    if sku_id and str(sku_id).isdigit():
        sku = skus_for_sale(sku_ids=[int(sku_id)]).get(int(sku_id))
        if sku is not None:
            try:
                quote = sku_price(sku=sku, buyer_id=request.user.pk, quantity=1, sales_channel=SALES_CHANNEL_BATCH)
            except ApplicationError:
                quote = None
    recent = (Order.objects.filter(buyer_id=request.user.pk, sales_channel=SALES_CHANNEL_BATCH)
              .order_by("-pk")[:RECENT_ORDERS])
    context: dict[str, Any] = {
        "form": form, "unit_quote": quote, "recent": recent, "balance": wallet_balance(user_id=request.user.pk),
        "batch_max": settings.KAMENG_BATCH_PURCHASE_MAX,
        **pin_context(request.user, amount=ZERO, most=ORDER_TOTAL_MAX)}
    if error is not None:
        context.update(error_message=message_for(error), error_code=error.code)
        quantity = form.cleaned_data.get("quantity") if form.is_valid() else None
        if error.code == "insufficient_balance" and quote is not None and quantity:
            # what the order costs and what the wallet holds, and where to top it up
            context.update(error_message=_("钱包余额不足：本单需 ¥%(total)s（%(quantity)s × ¥%(unit)s），当前余额 "
                                           "¥%(balance)s，请先充值或减少数量") % {
                "total": money(quote.unit_price * quantity), "quantity": quantity, "unit": quote.unit_price,
                "balance": context["balance"]}, topup_needed=True)
    return console_render(request, "web/reseller/batch.html", context, status=status)


@never_cache
@sensitive_post_parameters(PIN_FIELD)
@require_http_methods(["GET", "POST"])
@reseller_required(active=True)
def reseller_batch(request: ResellerRequest) -> HttpResponse:
    if request.method == "GET":
        initial = {"quantity": 100, "request_id": new_request_id()}
        if request.GET.get("sku", "").isdigit():
            initial["sku"] = int(request.GET["sku"])
        return _page(request, BatchPurchaseForm(initial=initial, buyer_id=request.user.pk))
    form = BatchPurchaseForm(request.POST, buyer_id=request.user.pk)
    if not form.is_valid():
        return _page(request, form, status=400)
    payment = PaymentChoice(PayBy.WALLET, pin=posted_pin(request), pin_settings=pin_settings_of(request.user))
    try:
        result = purchase_create(buyer_id=request.user.pk, sku_id=form.cleaned_data["sku"],
                                 quantity=form.cleaned_data["quantity"], payment=payment,
                                 request_id=form.cleaned_data["request_id"] or None,
                                 sales_channel=SALES_CHANNEL_BATCH, client_ip=client_address(request),
                                 device_id=risk_device_id(request))
    except ApplicationError as error:
        return _page(request, form, status=status_for(error), error=error)
    order = result.order
    if not result.created:
        messages.info(request, _("该订单已提交过，以下是原订单"))
    elif order.status in KEYS_VISIBLE:
        messages.success(request, _("采购成功，已发放 %(count)s 张卡密，可下载 TXT 或 CSV 文件")
                         % {"count": order.quantity})
    else:
        messages.success(request, _("支付成功，订单正在处理，完成后可在此下载"))
    return redirect("web:reseller_batch_order", number=order.number)


def _own_order(request: ResellerRequest, number: str) -> Order:
    order = order_of_buyer(buyer_id=request.user.pk, number=number)
    if order is None:
        raise Http404("订单不存在")
    return order


@never_cache
@require_GET
@reseller_required
def reseller_batch_order(request: ResellerRequest, number: str) -> HttpResponse:
    order = _own_order(request, number)
    return console_render(request, "web/reseller/batch_order.html", {
        "order": order, "keys_ready": order.status in KEYS_VISIBLE, "in_progress": order.status in IN_PROGRESS,
        "is_card_key": order.sku.product.delivery_kind == DeliveryKind.CARD_KEY})


def _csv_cell(secret: str) -> str:
    """A secret as a spreadsheet reads it without running it: a leading formula character is quoted with '."""
    return f"'{secret}" if secret.startswith(CSV_FORMULA_PREFIXES) else secret


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(order: Order, secrets: list[str]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff"  # a BOM: spreadsheet programs then read the Chinese header as UTF-8
    yield writer.writerow(["订单号", "序号", "商品", "卡密"])
    for index, secret in enumerate(secrets, start=1):
        yield writer.writerow([order.number, index, order.title, _csv_cell(secret)])


def _txt_lines(secrets: list[str]) -> Iterator[str]:
    for secret in secrets:
        yield f"{secret}\n"


@never_cache
@require_GET
@reseller_required
def reseller_batch_keys(request: ResellerRequest, number: str, file_format: str) -> HttpResponseBase:
    """The order's delivered keys as a file: TXT (one secret a line, exactly as delivered) or CSV."""
    if file_format not in KEY_FILE_FORMATS:
        raise Http404("不支持的文件格式")
    order = _own_order(request, number)
    if order.status not in KEYS_VISIBLE:
        error = (ConflictError("订单尚未发货，暂无卡密", code="not_delivered") if order.status in IN_PROGRESS
                 else ConflictError("订单当前状态为「%(status)s」，没有可下载的卡密", code="no_keys",
                                    params={"status": OrderStatus(order.status).label}))
        return console_render(request, "web/reseller/batch_order.html", {
            "order": order, "keys_ready": False, "in_progress": order.status in IN_PROGRESS,
            "error_message": message_for(error), "error_code": error.code}, status=error.status_code)
    secrets = secrets_for_order(order_id=order.pk)
    if file_format == "csv":
        response = StreamingHttpResponse(_csv_lines(order, secrets), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(_txt_lines(secrets), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{order.number}.{file_format}"'
    patch_cache_control(response, no_store=True, private=True)
    return response
