"""Back office for points: the points shop's items (staff edit them), the exchanges made (read only; the one action
refunds an exchange in points) and each order's points (read only). Points move only through services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin

from kameng.catalog.models import DeliveryKind, Sku
from kameng.core.admin import ReadOnlyAdminMixin
from kameng.core.errors import ApplicationError
from kameng.points.models import OrderPoints, PointsExchange, PointsShopItem
from kameng.points.services import points_exchange_refund


@admin.register(PointsShopItem)
class PointsShopItemAdmin(ModelAdmin):
    list_display = ("sku", "points_price", "per_buyer_limit", "is_active", "sort_order", "created_at")
    list_filter = ("is_active",)
    list_editable = ("is_active", "sort_order")
    list_select_related = ("sku__product",)
    fields = ("sku", "points_price", "per_buyer_limit", "is_active", "sort_order")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "sku":  # the points shop delivers card keys only (kameng.points.services)
            kwargs["queryset"] = Sku.objects.filter(product__delivery_kind=DeliveryKind.CARD_KEY).select_related(
                "product")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj: PointsShopItem | None = None) -> bool:
        # An item with exchanges is kept for their record: take it off the shop instead (「上架」).
        return super().has_delete_permission(request, obj) and (obj is None or not obj.exchanges.exists())


@admin.register(PointsExchange)
class PointsExchangeAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("order", "buyer", "item", "quantity", "points", "order_status", "created_at")
    list_select_related = ("order", "buyer", "item__sku__product")
    search_fields = ("=order__number", "buyer__username")
    fields = ("order", "buyer", "item", "quantity", "points", "created_at")
    readonly_fields = fields
    actions = ("refund_in_points",)

    @admin.display(description="订单状态")
    def order_status(self, obj: PointsExchange) -> str:
        return str(obj.order.get_status_display())

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.change_order")

    @admin.action(description="退款（退回积分）", permissions=["refund"])
    def refund_in_points(self, request: HttpRequest, queryset: QuerySet[PointsExchange]) -> None:
        refunded, refused = 0, []
        for exchange in queryset.select_related("order"):
            try:
                points_exchange_refund(order_id=exchange.order_id, reason="客服退款")
            except ApplicationError as error:
                refused.append(f"{exchange.order.number}：{error.message}")
            else:
                refunded += 1
        if refunded:
            messages.success(request, f"已退款 {refunded} 笔积分兑换，积分已退回")
        for line in refused:
            messages.error(request, line)


@admin.register(OrderPoints)
class OrderPointsAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("order", "earned", "returned", "shortfall", "journals", "updated_at")
    list_select_related = ("order",)
    search_fields = ("=order__number",)
    fields = ("order", "earned", "returned", "shortfall", "journals", "updated_at")
    readonly_fields = fields
