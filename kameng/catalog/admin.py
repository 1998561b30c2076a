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
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import display

from kameng.catalog.models import Category, Product, Sku
from kameng.catalog.selectors import category_contents, product_has_enabled_sku, sku_count_by_product
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
    fields: tuple[str, ...] = ("name", "face_value", "price", "is_active", "sort_order")


class ProductAdmin(ModelAdmin):
    """Registered by kameng.inventory.admin (with stock per SKU); see the module docstring."""

    list_display = ("name", "category", "delivery_kind", "status", "sku_count", "sort_order", "updated_at")
    list_display_links = ("name",)
    list_editable = ("status",)
    list_filter = ("category", "status", "delivery_kind")
    list_select_related = ("category",)
    search_fields = ("name", "description")
    inlines = (SkuInline,)
    fieldsets = (
        (None, {"fields": ("category", "name", "description", "delivery_kind", "status", "sort_order")}),
        ("购买限制与库存", {"fields": ("min_quantity", "max_quantity", "low_stock_threshold")}),
    )

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
