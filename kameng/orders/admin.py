"""Back office for orders: a read-only view with the buyer's timeline and the delivered keys (masked). Orders
change only through services. The page is registered by kameng.payments.admin, which adds the order's payments,
refunds and the refund action (kameng/payments/order_admin.py)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from unfold.admin import ModelAdmin, TabularInline

from kameng.core.admin import ReadOnlyAdminMixin
from kameng.core.masking import mask_secret
from kameng.inventory.selectors import secrets_for_order
from kameng.orders.models import Order, OrderEvent


class ReadOnlyInline(ReadOnlyAdminMixin, TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False
    # Each row's title would repeat a column (the event's message, the payment or refund number).
    hide_title = True


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ("created_at", "from_status", "to_status", "message")
    readonly_fields = fields
    ordering = ("id",)


class OrderAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Registered by kameng.payments.admin, which adds the payments, the refunds and the refund action: orders
    are below payments and do not import them."""

    list_display = ("number", "buyer", "title", "quantity", "total_amount", "refunded_amount", "status",
                    "created_at", "paid_at", "delivered_at")
    list_filter = ("status", "created_at", "paid_at")
    list_select_related = ("buyer",)
    search_fields = ("=number", "buyer__username")
    search_help_text = "按订单号（完整）或买家用户名搜索"
    date_hierarchy = "created_at"
    fields = ("number", "buyer", "sku", "title", "quantity", "unit_price", "total_amount", "refunded_amount",
              "status", "request_id", "created_at", "expires_at", "paid_at", "delivered_at", "updated_at",
              "delivered_keys")
    readonly_fields = fields
    inlines: tuple[type[TabularInline], ...] = (OrderEventInline,)

    @admin.display(description="已发卡密（脱敏）")
    def delivered_keys(self, order: Order) -> str:
        """What customer service needs to talk about a key with its buyer ("the one ending in …35"), never the
        key itself: each secret masked to its first and last two characters, with a link to the key rows."""
        masked = [mask_secret(secret) for secret in secrets_for_order(order_id=order.pk)]
        if not masked:
            return "—"
        rows = reverse("admin:inventory_cardkey_changelist") + f"?q={order.number}"
        return format_html("{}<br><a href=\"{}\">{} 条卡密记录</a>",
                           format_html_join(mark_safe("<br>"), "<code>{}</code>", ((key,) for key in masked)),
                           rows, len(masked))
