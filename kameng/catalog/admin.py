"""Back office for the catalogue: categories, products with their SKUs (face values).

Deleting is refused with a short count wherever Django would otherwise list every protected row: a SKU can have
hundreds of thousands of card keys, and the protected-objects page would list (and load) each one.

The product page is registered by kameng.inventory.admin, which adds the live stock and the import link per SKU:
the catalogue is below inventory (kameng.inventory's keys point at SKUs) and does not import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Model, QuerySet
from django.forms import BaseInlineFormSet
from django.forms.formsets import DELETION_FIELD_NAME
from django.http import HttpRequest, QueryDict
from django.utils.html import format_html
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import display
from unfold.widgets import UnfoldAdminImageFieldWidget

from kameng.catalog.models import Category, DeliveryKind, Product, Sku
from kameng.catalog.pictures import (
    MAX_PICTURE_BYTES,
    MAX_PICTURE_SIDE,
    MIN_PICTURE_SIDE,
    PictureRejectedError,
    PreparedPicture,
    picture_prepare,
)
from kameng.catalog.selectors import category_contents, product_has_enabled_sku, sku_count_by_product
from kameng.catalog.services import product_picture_remove, product_picture_store
from kameng.catalog.topup_forms import topup_form_clean, topup_form_errors
from kameng.core.admin import protected_references_text

MAX_REFUSAL_LINES = 20
DeletedObjects = tuple[list[str], dict[str, int], set[str], list[str]]


def _refusals(objs: Sequence[Model] | QuerySet[Any], reasons: dict[int, str]) -> list[str]:
    """One line per object that cannot be deleted, at most MAX_REFUSAL_LINES of them (the delete action can be
    run on a whole changelist page)."""
    lines = [f"「{obj}」{reasons[obj.pk]}" for obj in objs if obj.pk in reasons]
    if len(lines) > MAX_REFUSAL_LINES:
        lines = [*lines[:MAX_REFUSAL_LINES], f"……另有 {len(lines) - MAX_REFUSAL_LINES} 项同样不能删除"]
    return lines


@admin.register(Category)
class CategoryAdmin(ModelAdmin):
    list_display = ("name", "slug", "parent", "sort_order", "is_active")
    list_editable = ("sort_order", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    def get_deleted_objects(self, objs: Sequence[Category] | QuerySet[Category],
                            request: HttpRequest) -> DeletedObjects:
        contents = category_contents(obj.pk for obj in objs)
        reasons = {
            pk: f"下还有 {products} 个商品、{children} 个子分类，不能删除；请先移走它们，或取消「显示」"
            for pk, (products, children) in contents.items()
        }
        if reasons:
            return [], {}, set(), _refusals(objs, reasons)
        return super().get_deleted_objects(objs, request)


def sku_delete_refusal(sku: Sku) -> str | None:
    """Why a saved SKU cannot be deleted (card keys, orders or import batches point at it), or None if it can."""
    what = protected_references_text(Sku, [sku.pk])
    return f"该规格仍有{what}引用，不能删除；请取消「启用」" if what else None


class SkuInlineForm(forms.ModelForm):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get(DELETION_FIELD_NAME) and self.instance.pk is not None:
            refusal = sku_delete_refusal(self.instance)
            if refusal:
                # Un-mark the deletion before the admin's own check runs: that check collects (and then lists)
                # every protected row. The page comes back with the box unticked too, or unfold would show the row
                # greyed out as "will be deleted", message and all.
                cleaned[DELETION_FIELD_NAME] = False
                data = QueryDict(mutable=True)
                data.update(self.data)
                data.pop(self.add_prefix(DELETION_FIELD_NAME), None)
                self.data = data
                raise forms.ValidationError(refusal, code="sku_in_use")
        return cleaned


class SkuInlineFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        seen: set[str] = set()
        for form in self.forms:
            cleaned = getattr(form, "cleaned_data", {})
            name = " ".join(str(cleaned.get("name") or "").split()).casefold()
            if not name or cleaned.get(DELETION_FIELD_NAME):
                continue
            if name in seen:
                form.add_error("name", "同一商品下已有同名规格，请改用不同的名称（如「100 元」「200 元」）")
            seen.add(name)


class SkuInline(TabularInline):
    model = Sku
    form = SkuInlineForm
    formset = SkuInlineFormSet
    extra = 0
    fields: tuple[str, ...] = ("name", "face_value", "price", "floor_price", "is_active", "sort_order")


TOPUP_FORM_EXAMPLE = ('[{"name": "phone", "label": "手机号", "kind": "phone", "required": true, '
                      '"carriers": ["移动"]}]')
TOPUP_FORM_HELP = (
    "仅直充商品：买家下单时填写的字段，JSON 数组。每个字段："
    "name（英文小写标识，如 account）、label（买家看到的名称）、kind（phone 手机号 / text 文字 / select 下拉选择）、"
    "required（是否必填，默认 true）；select 需要 options（选项列表）；text 可选 max_length、pattern（正则）、"
    "pattern_message（不匹配时的提示）；phone 可选 carriers（限定运营商：移动、联通、电信、广电）。"
    "留空则默认一个必填的「充值账号」。游戏示例："
    '[{"name": "account", "label": "游戏账号", "kind": "text"}, '
    '{"name": "region", "label": "大区", "kind": "select", "options": ["微信区", "QQ区"]}]'
)


class ProductAdminForm(forms.ModelForm):
    picture_upload = forms.FileField(
        label="上传图片", required=False, widget=UnfoldAdminImageFieldWidget,
        help_text=f"JPEG、PNG 或 WebP，最大 {MAX_PICTURE_BYTES // (1024 * 1024)} MB，宽高 {MIN_PICTURE_SIDE}–"
                  f"{MAX_PICTURE_SIDE} 像素；会自动生成缩略图。不上传则店铺显示默认占位图",
    )
    picture_remove = forms.BooleanField(label="删除现有图片", required=False,
                                        help_text="勾选后保存：店铺改为显示默认占位图")

    class Meta:
        model = Product
        fields = ("category", "name", "description", "delivery_kind", "status", "sort_order", "min_quantity",
                  "max_quantity", "low_stock_threshold", "topup_form", "is_game_goods")
        widgets = {"topup_form": forms.Textarea(attrs={"rows": 10, "spellcheck": "false",
                                                       "class": "font-mono", "placeholder": TOPUP_FORM_EXAMPLE})}
        help_texts = {"topup_form": TOPUP_FORM_HELP}

    def clean_topup_form(self) -> Any:
        """The template checked field by field (kameng.catalog.topup_forms): every problem listed, by position."""
        template = self.cleaned_data.get("topup_form")
        if template in (None, "", []):
            return []
        errors = topup_form_errors(template)
        if errors:
            raise forms.ValidationError(errors)
        return topup_form_clean(template)

    def clean_picture_upload(self) -> PreparedPicture | None:
        upload = self.cleaned_data.get("picture_upload")
        if upload is None:
            return None
        if upload.size is not None and upload.size > MAX_PICTURE_BYTES:  # not even read
            raise forms.ValidationError(f"图片超过 {MAX_PICTURE_BYTES // (1024 * 1024)} MB，请压缩或缩小后再上传")
        try:
            return picture_prepare(data=upload.read())
        except PictureRejectedError as error:
            raise forms.ValidationError(error.message, code=error.code) from error

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("picture_upload") is not None and cleaned.get("picture_remove"):
            raise forms.ValidationError("请只选择一项：上传新图片，或删除现有图片")
        if cleaned.get("topup_form") and cleaned.get("delivery_kind") not in (None, DeliveryKind.DIRECT_TOPUP):
            self.add_error("topup_form", "只有「直充」商品需要充值表单：请清空，或把发货方式改为「直充」")
        return cleaned


class ProductAdmin(ModelAdmin):
    """Registered by kameng.inventory.admin (with stock per SKU); see the module docstring."""

    form = ProductAdminForm
    list_display = ("name", "picture_small", "category", "delivery_kind", "status", "sku_count", "sort_order",
                    "updated_at")
    list_display_links = ("name",)
    list_editable = ("status",)
    list_filter = ("category", "status", "delivery_kind", "is_game_goods")
    list_select_related = ("category",)
    search_fields = ("name", "description")
    inlines = (SkuInline,)
    fieldsets = (
        (None, {"fields": ("category", "name", "description", "delivery_kind", "status", "sort_order")}),
        ("商品图片", {"fields": ("picture_preview", "picture_upload", "picture_remove")}),
        ("购买限制与库存", {"fields": ("min_quantity", "max_quantity", "low_stock_threshold")}),
        ("直充充值表单", {"fields": ("topup_form",)}),
        ("合规", {"fields": ("is_game_goods",)}),
    )
    readonly_fields: tuple[str, ...] = ("picture_preview",)

    @display(description="当前图片")
    def picture_preview(self, obj: Product) -> str:
        if not obj.pk or not obj.thumbnail:
            return "暂无图片（店铺显示默认占位图）"
        return format_html('<img src="{}" alt="" width="160" class="rounded-default border border-base-200">',
                           obj.thumbnail.url)

    @display(description="图片")
    def picture_small(self, obj: Product) -> str:
        if not obj.thumbnail:
            return "—"
        return format_html('<img src="{}" alt="" width="40" height="40" class="rounded-default object-contain">',
                           obj.thumbnail.url)

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        prepared = form.cleaned_data.get("picture_upload")
        if prepared is not None:
            stored = product_picture_store(product_id=obj.pk, prepared=prepared)
            obj.picture, obj.thumbnail = stored.picture, stored.thumbnail
        elif form.cleaned_data.get("picture_remove"):
            product_picture_remove(product_id=obj.pk)
            obj.picture.name, obj.thumbnail.name = "", ""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        return super().get_queryset(request).annotate(sku_total=Count("skus"))

    @display(description="规格数", ordering="sku_total")
    def sku_count(self, obj: Model) -> int:
        return int(getattr(obj, "sku_total", 0))

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: Any) -> None:
        super().save_related(request, form, formsets, change)
        product = form.instance
        if product.is_on_sale and not product_has_enabled_sku(product_id=product.pk):
            messages.warning(request, f"「{product}」状态为在售，但没有启用的规格，店铺不会显示它："
                                      "请添加规格或勾选「启用」")

    def get_deleted_objects(self, objs: Sequence[Product] | QuerySet[Product],
                            request: HttpRequest) -> DeletedObjects:
        counts = sku_count_by_product(obj.pk for obj in objs)
        reasons = {
            pk: f"还有 {total} 个规格，不能删除；请先在商品页删除规格（已有卡密或订单的规格不能删除），"
                "或把状态改为「已下架」"
            for pk, total in counts.items()
        }
        if reasons:
            return [], {}, set(), _refusals(objs, reasons)
        return super().get_deleted_objects(objs, request)


@admin.register(Sku)
class SkuLookupAdmin(ModelAdmin):
    """Not a page of its own (SKUs are edited on their product's page): it lets other staff forms pick a SKU by
    product or SKU name with `autocomplete_fields` (a routing rule, a supplier's offer), each shown as
    「商品 · 规格」."""

    search_fields = ("product__name", "name")
    ordering = ("product__name", "sort_order", "pk")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Sku],
                           search_term: str) -> tuple[QuerySet[Sku], bool]:
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return queryset.select_related("product"), may_have_duplicates

    def has_module_permission(self, request: HttpRequest) -> bool:
        return False  # kept out of the menu and the index

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Sku | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Sku | None = None) -> bool:
        return False
