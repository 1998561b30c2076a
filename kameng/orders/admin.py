"""Back office for orders: a read-only view with the buyer's timeline. Orders change only through services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from unfold.admin import ModelAdmin, TabularInline

from kameng.orders.models import Order, OrderEvent


class OrderEventInline(TabularInline):
    model = OrderEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "from_status", "to_status", "message")
    readonly_fields = fields
    ordering = ("id",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(ModelAdmin):
    list_display = ("number", "buyer", "title", "quantity", "total_amount", "status", "created_at", "paid_at",
                    "delivered_at")
    list_filter = ("status", "created_at", "paid_at")
    list_select_related = ("buyer",)
    search_fields = ("=number", "buyer__username")
    search_help_text = "按订单号（完整）或买家用户名搜索"
    date_hierarchy = "created_at"
    fields = ("number", "buyer", "sku", "title", "quantity", "unit_price", "total_amount", "status", "request_id",
              "created_at", "expires_at", "paid_at", "delivered_at", "updated_at")
    readonly_fields = fields
    inlines = (OrderEventInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
