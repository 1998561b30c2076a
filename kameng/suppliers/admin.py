"""Staff pages for suppliers, their offers, routing rules and direct top-up attempts."""

from __future__ import annotations

from django.contrib import admin
from unfold.admin import ModelAdmin

from kameng.suppliers.models import SkuRoutingRule, Supplier, SupplierOffer, TopupAttempt


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
                    "needs_review", "submitted_at", "finished_at")
    # 需人工核查: a success reported after the attempt failed (double delivery risk), or still unknown after the
    # last query allowed (kameng.suppliers.topup).
    list_filter = ("needs_review", "status")
    search_fields = ("customer_order_no", "supplier_order_id")
    raw_id_fields = ("order", "offer", "supplier")
    readonly_fields = [f.name for f in TopupAttempt._meta.fields]
