"""The supplier console's offers (报价) and card-key upload (上传卡密): its own offers only.

Any supplier sees its offers; only an approved one that accepted the current agreement creates or edits them and
uploads keys (the page says why not otherwise). Another supplier's offer answers 404.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop
from django.views.decorators.http import require_http_methods

from kameng.catalog.models import Sku
from kameng.core.errors import ApplicationError, NotFoundError
from kameng.inventory.batches import decode_upload
from kameng.inventory.models import CardKeyBatch, CardKeyStatus
from kameng.suppliers.models import OfferStockSource, SupplierOffer
from kameng.suppliers.offer_editing import (
    OfferInput,
    offerable_skus,
    supplier_batches,
    supplier_card_keys_upload,
    supplier_offer_create,
    supplier_offer_of,
    supplier_offer_update,
)
from kameng.suppliers.onboarding import supplier_can_sell_or_raise
from kameng.web.errors import message_for, status_for
from kameng.web.views.supplier_console import SUPPLIER_CONSOLE_NAV, SupplierRequest, console_render, supplier_required

SUPPLIER_CONSOLE_NAV.append(("web:supplier_offers", gettext_lazy("报价")))

OFFER_TEXTS = (
    gettext_noop("供货价必须大于 0"),
    gettext_noop("供货价最多两位小数"),
    gettext_noop("请选择库存来源"),
    gettext_noop("该商品不是卡密发货，库存来源请选「上游接口」"),
    gettext_noop("库存来源为上游接口时，请填写上游商品编号"),
    gettext_noop("每日上限至少为 1，留空表示不限"),
    gettext_noop("规格不存在或已停售"),
    gettext_noop("您已为该规格创建过报价，请直接修改原报价"),
    gettext_noop("报价不存在"),
    gettext_noop("该报价的库存来源不是卡密，不能上传卡密"),
    gettext_noop("供货商状态为「%(status)s」：提交审核后才能创建报价、上传卡密（审核通过前不会销售）"),
    gettext_noop("供货商协议已更新：请在概览页阅读并同意新版协议后继续"),
    gettext_noop("没有可导入的内容：请粘贴卡密（每行一个）或上传 TXT/CSV 文件"),
    gettext_noop("没有可导入的卡密：内容只有空行、注释或表头"),
    gettext_noop("无法识别文件编码：请上传 UTF-8 或 GBK 编码的 TXT/CSV 文本文件"),
    gettext_noop("文件超过 50 MB，请拆分后分批导入"),
    gettext_noop("内容超过 50 MB，请拆分后分批导入"),
    gettext_noop("卡密库存（上传的卡密）"),
    gettext_noop("上游接口（直充 / 接口取卡）"),
    gettext_noop("排队中"),
    gettext_noop("导入中"),
    gettext_noop("已完成"),
    gettext_noop("失败"),
)


class SkuChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.product.name} · {obj.name} (¥{obj.price})"


class OfferForm(forms.Form):
    sku = SkuChoiceField(label=gettext_lazy("平台规格"), queryset=Sku.objects.none(),
                         error_messages={"required": gettext_lazy("请选择平台规格"),
                                         "invalid_choice": gettext_lazy("规格不存在或已停售")})
    price = forms.DecimalField(label=gettext_lazy("供货价（元）"), max_digits=12, decimal_places=2,
                               error_messages={"required": gettext_lazy("请填写供货价"),
                                               "invalid": gettext_lazy("请输入有效的金额"),
                                               "max_decimal_places": gettext_lazy("供货价最多两位小数")})
    stock_source = forms.ChoiceField(label=gettext_lazy("库存来源"), choices=OfferStockSource.choices)
    upstream_product_id = forms.CharField(label=gettext_lazy("上游商品编号"), max_length=64, required=False,
                                          help_text=gettext_lazy("库存来源为上游接口时必填"))
    max_per_day = forms.IntegerField(label=gettext_lazy("每日上限"), required=False, min_value=1,
                                     help_text=gettext_lazy("留空表示不限"))
    is_active = forms.BooleanField(label=gettext_lazy("启用"), required=False, initial=True)

    def __init__(self, *args: Any, with_sku: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if with_sku:
            sku_field = self.fields["sku"]
            assert isinstance(sku_field, SkuChoiceField)
            sku_field.queryset = Sku.objects.filter(pk__in=[sku.pk for sku in offerable_skus()]) \
                .select_related("product").order_by("product__name", "sort_order", "pk")
        else:
            del self.fields["sku"]

    def offer_input(self) -> OfferInput:
        data = self.cleaned_data
        return OfferInput(price=data["price"], stock_source=data["stock_source"],
                          upstream_product_id=data["upstream_product_id"], max_per_day=data["max_per_day"],
                          is_active=data["is_active"])


class CardKeyUploadForm(forms.Form):
    text = forms.CharField(label=gettext_lazy("卡密（每行一个）"), required=False,
                           widget=forms.Textarea(attrs={"rows": 8, "data-testid": "keys-text"}))
    file = forms.FileField(label=gettext_lazy("或上传 TXT/CSV 文件"), required=False)


def _selling_refusal(request: SupplierRequest) -> str | None:
    try:
        supplier_can_sell_or_raise(supplier=request.supplier)
    except ApplicationError as error:
        return message_for(error)
    return None


def _offers_page(request: SupplierRequest, form: OfferForm | None = None, *, status: int = 200) -> HttpResponse:
    offers = SupplierOffer.objects.filter(supplier=request.supplier).select_related("sku__product").order_by("pk")
    return console_render(request, "web/supplier/offers.html",
                          {"offers": offers, "form": form or OfferForm(), "refusal": _selling_refusal(request)},
                          status=status)


@require_http_methods(["GET", "POST"])
@supplier_required
def supplier_offers(request: SupplierRequest) -> HttpResponse:
    if request.method == "GET":
        return _offers_page(request)
    form = OfferForm(request.POST)
    if not form.is_valid():
        return _offers_page(request, form, status=400)
    try:
        supplier_offer_create(supplier=request.supplier, sku_id=form.cleaned_data["sku"].pk, data=form.offer_input())
    except ApplicationError as error:
        form.add_error(None, message_for(error))
        return _offers_page(request, form, status=status_for(error))
    messages.success(request, _("报价已创建"))
    return redirect("web:supplier_offers")


def _own_offer(request: SupplierRequest, offer_id: int) -> SupplierOffer:
    try:
        return supplier_offer_of(supplier=request.supplier, offer_id=offer_id)
    except NotFoundError:
        raise Http404("报价不存在") from None


@require_http_methods(["GET", "POST"])
@supplier_required
def supplier_offer_edit(request: SupplierRequest, offer_id: int) -> HttpResponse:
    offer = _own_offer(request, offer_id)
    initial = {"price": offer.price, "stock_source": offer.stock_source,
               "upstream_product_id": offer.upstream_product_id, "max_per_day": offer.max_per_day,
               "is_active": offer.is_active}
    form = OfferForm(request.POST or None, initial=initial, with_sku=False)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                supplier_offer_update(supplier=request.supplier, offer_id=offer.pk, data=form.offer_input())
            except ApplicationError as error:
                form.add_error(None, message_for(error))
                status = status_for(error)
            else:
                messages.success(request, _("报价已保存"))
                return redirect("web:supplier_offers")
    return console_render(request, "web/supplier/offer_edit.html",
                          {"offer": offer, "form": form, "refusal": _selling_refusal(request)}, status=status)


def _keys_page(request: SupplierRequest, offer: SupplierOffer, form: CardKeyUploadForm | None = None,
               *, status: int = 200, **extra: Any) -> HttpResponse:
    available = offer.sku.card_keys.filter(supplier=request.supplier, status=CardKeyStatus.AVAILABLE).count()
    batches = [batch for batch in supplier_batches(supplier=request.supplier) if batch.sku_id == offer.sku_id]
    return console_render(request, "web/supplier/offer_keys.html",
                          {"offer": offer, "form": form or CardKeyUploadForm(), "available": available,
                           "batches": batches, "refusal": _selling_refusal(request), **extra}, status=status)


@require_http_methods(["GET", "POST"])
@supplier_required
def supplier_offer_keys(request: SupplierRequest, offer_id: int) -> HttpResponse:
    offer = _own_offer(request, offer_id)
    if request.method == "GET":
        # After an upload: its result, named by the redirect (only the supplier's own batch of this SKU).
        shown = request.GET.get("batch", "")
        batch = (CardKeyBatch.objects.filter(pk=int(shown), supplier=request.supplier, sku_id=offer.sku_id).first()
                 if shown.isdigit() else None)
        return _keys_page(request, offer, batch=batch)
    form = CardKeyUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _keys_page(request, offer, form, status=400)
    upload = form.cleaned_data["file"]
    try:
        if upload is not None:
            text = decode_upload(upload.read())
            is_csv = (upload.name or "").lower().endswith(".csv")
            source = upload.name or ""
        else:
            text, is_csv, source = form.cleaned_data["text"], False, ""
        batch = supplier_card_keys_upload(supplier=request.supplier, offer_id=offer.pk, text=text, is_csv=is_csv,
                                          source_name=source)
    except ApplicationError as error:
        form.add_error(None, message_for(error))
        return _keys_page(request, offer, form, status=status_for(error))
    # Post/redirect/get: reloading the result page does not upload the keys again.
    return redirect(f"{reverse('web:supplier_offer_keys', args=[offer.pk])}?batch={batch.pk}")
