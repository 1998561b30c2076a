"""Staff pages for suppliers, their offers, routing rules, direct top-up attempts, rating weights and snapshots."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from unfold.admin import ModelAdmin

from kameng.suppliers.models import (
    WEIGHT_FIELDS,
    RatingSnapshot,
    RatingWeights,
    SkuRoutingRule,
    Supplier,
    SupplierOffer,
    TopupAttempt,
)


@admin.register(Supplier)
class SupplierAdmin(ModelAdmin):
    list_display = ("name", "status", "connector_kind", "rating", "tax_rate", "created_at")
    list_filter = ("status", "connector_kind")
    search_fields = ("name",)
    exclude = ("connector_config",)
    raw_id_fields = ("owner",)


@admin.register(SupplierOffer)
class SupplierOfferAdmin(ModelAdmin):
    list_display = ("supplier", "sku", "price", "stock_source", "upstream_stock", "is_active", "synced_at")
    list_filter = ("is_active", "stock_source")
    raw_id_fields = ("supplier", "sku")


@admin.register(SkuRoutingRule)
class SkuRoutingRuleAdmin(ModelAdmin):
    list_display = ("sku", "supplier", "kind", "note", "created_at")
    raw_id_fields = ("sku", "supplier")


@admin.register(TopupAttempt)
class TopupAttemptAdmin(ModelAdmin):
    list_display = ("customer_order_no", "order", "supplier", "status", "cost", "submit_count", "query_count",
                    "submitted_at", "finished_at")
    list_filter = ("status",)
    search_fields = ("customer_order_no", "supplier_order_id")
    raw_id_fields = ("order", "offer", "supplier")
    readonly_fields = [f.name for f in TopupAttempt._meta.fields]


@admin.register(RatingWeights)
class RatingWeightsAdmin(ModelAdmin):
    """One row: the weights of the rating components (validated to sum to 1 when saved)."""

    list_display = ("__str__", *WEIGHT_FIELDS, "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not RatingWeights.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: RatingWeights | None = None) -> bool:
        return False


@admin.register(RatingSnapshot)
class RatingSnapshotAdmin(ModelAdmin):
    list_display = ("day", "supplier", "stars", "is_provisional", "orders_count", "success_rate",
                    "delivery_seconds", "after_sales_rate", "price_premium", "stock_stability")
    list_filter = ("is_provisional", "day")
    search_fields = ("supplier__name",)
    date_hierarchy = "day"
    readonly_fields = [f.name for f in RatingSnapshot._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
