"""Back office for stock: the card-key import page, import batches with live progress, card keys, and the
catalogue's product page with live stock per SKU (registered here: the catalogue is below inventory).

No page here ever shows a card secret, not even masked: staff manage keys by id, status and batch.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.decorators import action, display
from unfold.widgets import (
    UnfoldAdminFileFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminSingleDateWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from kameng.catalog.admin import ProductAdmin, SkuInline
from kameng.catalog.models import DeliveryKind, Product, Sku
from kameng.core.admin import ReadOnlyAdminMixin
from kameng.core.errors import ApplicationError
from kameng.inventory.batches import MAX_UPLOAD_BYTES, card_key_batch_resume, card_key_import_submit, decode_upload
from kameng.inventory.models import CardKey, CardKeyBatch, ImportStatus
from kameng.inventory.selectors import stock_by_sku_now
from kameng.inventory.services import card_keys_void

IMPORT_PERMISSION = "inventory.add_cardkey"
FINISHED = (ImportStatus.DONE, ImportStatus.FAILED)
UPLOAD_SUFFIXES = (".txt", ".csv")


class CardKeyImportForm(forms.Form):
    sku = forms.ModelChoiceField(
        label="规格", queryset=Sku.objects.none(), widget=UnfoldAdminSelectWidget,
        help_text="只列出卡密发货的商品规格",
    )
    text = forms.CharField(
        label="粘贴卡密", required=False, strip=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 12, "placeholder": "每行一个卡密；以 # 开头的行会被忽略"}),
    )
    upload = forms.FileField(
        label="或上传文件", required=False, widget=UnfoldAdminFileFieldWidget,
        help_text="TXT 每行一个卡密；CSV 每行的各列以空格拼接（如 卡号 密码），首行表头自动跳过。"
                  "UTF-8 或 GBK 编码，最大 50 MB。",
    )
    expires_on = forms.DateField(label="有效期至", required=False, widget=UnfoldAdminSingleDateWidget,
                                 help_text="可选：这批卡密在该日结束后不再出售")
    supplier = forms.ModelChoiceField(
        label="供货商", required=False, queryset=Sku.objects.none(), widget=UnfoldAdminSelectWidget,
        help_text="可选：代供货商导入时选择，卡密记为该供货商的库存；留空为平台自有库存",
    )
    cost = forms.DecimalField(label="供货价", required=False, min_value=Decimal("0.00"), max_digits=12,
                              decimal_places=2, widget=UnfoldAdminTextInputWidget,
                              help_text="可选：供货商每张卡密的供货价（元）；只在选择了供货商时填写")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["sku"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Sku.objects.filter(product__delivery_kind=DeliveryKind.CARD_KEY).select_related("product")
        supplier_field = self.fields["supplier"]
        assert isinstance(supplier_field, forms.ModelChoiceField)
        # The suppliers app sits above inventory: reached through the relation, not imported.
        supplier_model = CardKeyBatch._meta.get_field("supplier").related_model
        supplier_field.queryset = supplier_model._default_manager.order_by("name")

    def clean_expires_on(self) -> date | None:
        day: date | None = self.cleaned_data.get("expires_on")
        if day is not None and day < timezone.localdate():
            raise forms.ValidationError(f"有效期至 {day:%Y-%m-%d} 已经过去：这批卡密导入后会立即过期、无法出售。"
                                        "请填写今天或以后的日期，或留空（不过期）")
        return day

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("cost") is not None and cleaned.get("supplier") is None:
            self.add_error("cost", "供货价只用于供货商的卡密：请同时选择供货商，或清空供货价")
        text: str = cleaned.get("text") or ""
        upload = cleaned.get("upload")
        if upload is not None and text.strip():
            raise forms.ValidationError("请只选择一种方式：粘贴或上传文件")
        cleaned["is_csv"] = False
        cleaned["source_name"] = "粘贴"
        if upload is not None:
            name = upload.name or ""
            if not name.lower().endswith(UPLOAD_SUFFIXES):
                self.add_error("upload", "只支持 .txt 或 .csv 文件")
                return cleaned
            if upload.size > MAX_UPLOAD_BYTES:
                self.add_error("upload", "文件超过 50 MB，请拆分后分批导入")
                return cleaned
            try:
                text = decode_upload(upload.read())
            except ApplicationError as error:
                self.add_error("upload", error.message)
                return cleaned
            cleaned["is_csv"] = name.lower().endswith(".csv")
            cleaned["source_name"] = name
        if not text.strip():
            raise forms.ValidationError("没有可导入的内容：请粘贴卡密（每行一个）或上传 TXT/CSV 文件")
        cleaned["text"] = text
        return cleaned

    def expires_at(self) -> datetime | None:
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return timezone.make_aware(datetime.combine(day, time(23, 59, 59)))


@admin.register(CardKeyBatch)
class CardKeyBatchAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("id", "sku", "supplier", "source_name", "status", "progress", "imported_count",
                    "duplicate_count", "invalid_count", "created_by", "created_at", "finished_at")
    list_filter = ("status", "created_at")
    list_select_related = ("sku__product", "created_by", "supplier")
    search_fields = ("source_name", "sku__name", "sku__product__name")
    readonly_fields = ("sku", "supplier", "cost", "created_by", "source_name", "status", "expires_at", "total_lines",
                       "processed_lines", "imported_count", "duplicate_count", "invalid_count", "error",
                       "created_at", "progressed_at", "finished_at")
    fields = readonly_fields
    actions_list = ("open_import",)
    change_form_before_template = "admin/inventory/cardkeybatch/progress_block.html"

    @display(description="进度")
    def progress(self, obj: CardKeyBatch) -> str:
        return f"{obj.processed_lines}/{obj.total_lines}（{obj.progress_percent}%）"

    @action(description="导入卡密", icon="upload", url_path="import-keys")
    def open_import(self, request: HttpRequest) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:inventory_cardkeybatch_import"))

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("import/", view(self.import_view), name="inventory_cardkeybatch_import"),
            path("import/<int:sku_id>/", view(self.import_view), name="inventory_cardkeybatch_import_sku"),
            path("<int:batch_id>/progress/", view(self.progress_view), name="inventory_cardkeybatch_progress"),
            path("<int:batch_id>/resume/", view(self.resume_view), name="inventory_cardkeybatch_resume"),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest, sku_id: int | None = None) -> HttpResponse:
        """Paste keys or upload a TXT/CSV file for one SKU; small inputs import at once, large ones in the worker."""
        if not request.user.has_perm(IMPORT_PERMISSION):
            raise PermissionDenied
        sku = get_object_or_404(Sku.objects.select_related("product"), pk=sku_id) if sku_id else None
        form = CardKeyImportForm(request.POST or None, request.FILES or None, initial={"sku": sku})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                supplier = data.get("supplier")
                batch = card_key_import_submit(
                    sku_id=data["sku"].pk, created_by_id=request.user.pk, text=data["text"],
                    is_csv=data["is_csv"], source_name=data["source_name"], expires_at=form.expires_at(),
                    supplier_id=supplier.pk if supplier else None, cost=data.get("cost"),
                )
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                if batch.status == ImportStatus.DONE:
                    messages.success(request, f"导入完成：成功 {batch.imported_count} 条，重复（已拒绝）"
                                              f"{batch.duplicate_count} 条，无效 {batch.invalid_count} 条")
                else:
                    messages.info(request, "内容较多，已转入后台导入；本页会自动刷新进度")
                return HttpResponseRedirect(reverse("admin:inventory_cardkeybatch_change", args=[batch.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"导入卡密 · {sku}" if sku else "导入卡密",
            "opts": self.model._meta,
            "form": form,
            "sku": sku,
            "inline_limit": settings.KAMENG_IMPORT_INLINE_LIMIT,
        }
        return TemplateResponse(request, "admin/inventory/cardkeybatch/import.html", context)

    def resume_view(self, request: HttpRequest, batch_id: int) -> HttpResponse:
        """继续导入: a failed batch goes back to the worker, which skips the chunks it already stored."""
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:inventory_cardkeybatch_change", args=[batch_id]))
        if not request.user.has_perm(IMPORT_PERMISSION):
            raise PermissionDenied
        try:
            card_key_batch_resume(batch_id=batch_id)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.info(request, "已重新排队，从中断处继续导入；本页会自动刷新进度")
        return HttpResponseRedirect(reverse("admin:inventory_cardkeybatch_change", args=[batch_id]))

    def progress_view(self, request: HttpRequest, batch_id: int) -> HttpResponse:
        """The batch's progress: an HTML fragment for htmx polling, JSON otherwise."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        batch = get_object_or_404(CardKeyBatch, pk=batch_id)
        if getattr(request, "htmx", False):
            response = TemplateResponse(request, "admin/inventory/cardkeybatch/progress.html", {"batch": batch})
            if batch.status in FINISHED:
                # Only a page rendered while the batch was unfinished polls: reload it whole, so the read-only
                # fields below the card (status, counts, finish time) stop saying 排队中.
                response["HX-Refresh"] = "true"
            return response
        return JsonResponse({
            "id": batch.pk, "status": batch.status, "total_lines": batch.total_lines,
            "processed_lines": batch.processed_lines, "progress_percent": batch.progress_percent,
            "imported_count": batch.imported_count, "duplicate_count": batch.duplicate_count,
            "invalid_count": batch.invalid_count, "error": batch.error,
        })


@admin.register(CardKey)
class CardKeyAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Card keys by id, status and batch. The secret column is deliberately absent from every view."""

    list_display = ("id", "sku", "status", "batch", "order", "expires_at", "created_at", "sold_at")
    list_filter = ("status", "sku")
    list_select_related = ("sku__product", "batch", "order")
    search_fields = ("=id", "=order__number")
    fields = ("sku", "status", "batch", "order", "expires_at", "created_at", "sold_at")
    readonly_fields = fields
    actions = ("void_available",)
    show_full_result_count = False  # counting millions of keys on every page view is not worth it

    def has_void_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("inventory.change_cardkey")

    @admin.action(description="作废（仅可售卡密）", permissions=["void"])
    def void_available(self, request: HttpRequest, queryset: QuerySet[CardKey]) -> None:
        selected = list(queryset.values_list("id", flat=True))
        voided = card_keys_void(card_key_ids=selected)
        skipped = len(selected) - voided
        note = f"，{skipped} 条已预留、已售出或已作废，未改动" if skipped else ""
        messages.success(request, f"已作废 {voided} 条卡密{note}")

    def get_queryset(self, request: HttpRequest) -> QuerySet[CardKey]:
        # Never load the ciphertext either: the list has no use for it.
        return super().get_queryset(request).defer("secret_ciphertext", "fingerprint")


class SkuStockInline(SkuInline):
    """The product page's SKU rows with their live stock and a link to import keys into each (card-key SKUs)."""

    fields = (*SkuInline.fields, "live_stock", "import_link")
    readonly_fields = ("live_stock", "import_link")

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> type[BaseInlineFormSet]:
        # Inline instances are built per request, so this page-wide figure never leaks between requests.
        # One grouped query for every SKU of the product instead of one count per row; never the storefront's cached
        # figure, which would show a count from before the import or void staff just made.
        self._stock: dict[int, int] = stock_by_sku_now(obj.skus.values_list("id", flat=True)) if obj else {}
        self._is_card_key = bool(obj and obj.delivery_kind == DeliveryKind.CARD_KEY)
        return super().get_formset(request, obj, **kwargs)

    @display(description="可售库存")
    def live_stock(self, obj: Sku) -> str:
        if obj.pk is None or not getattr(self, "_is_card_key", False):
            return "—"
        return str(getattr(self, "_stock", {}).get(obj.pk, 0))

    @display(description="卡密")
    def import_link(self, obj: Sku) -> str:
        if obj.pk is None or not getattr(self, "_is_card_key", False):
            return "—"
        url = reverse("admin:inventory_cardkeybatch_import_sku", args=[obj.pk])
        return format_html('<a class="text-primary-600 font-medium" href="{}">导入卡密</a>', url)


# The catalogue's product page, registered here because it shows stock: the catalogue is below inventory.
@admin.register(Product)
class ProductStockAdmin(ProductAdmin):
    inlines = (SkuStockInline,)
