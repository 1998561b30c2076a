"""Back office for the catalogue: categories, products with their SKUs (face values) and live stock per SKU."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, Model, QuerySet
from django.forms import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import display

from kameng.catalog.models import Category, DeliveryKind, Product, Sku
from kameng.inventory.selectors import stock_by_sku


@admin.register(Category)
class CategoryAdmin(ModelAdmin):
    list_display = ("name", "slug", "parent", "sort_order", "is_active")
    list_editable = ("sort_order", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


class SkuInline(TabularInline):
    model = Sku
    extra = 0
    fields = ("name", "face_value", "price", "is_active", "sort_order", "live_stock", "import_link")
    readonly_fields = ("live_stock", "import_link")

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> type[BaseInlineFormSet]:
        # Inline instances are built per request, so this page-wide figure never leaks between requests.
        # One grouped query for every SKU of the product instead of one count per row.
        self._stock: dict[int, int] = stock_by_sku(obj.skus.values_list("id", flat=True)) if obj else {}
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


@admin.register(Product)
class ProductAdmin(ModelAdmin):
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
