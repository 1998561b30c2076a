"""Back office for orders: a read-only view with the buyer's timeline and the delivered keys (masked). Orders
change only through services; the one staff action here is fulfilling an order delivered by hand (deliver it with a
note the buyer reads, or fail it: its money back to the wallet, kameng.orders.fulfilment). The page is registered
by kameng.payments.admin, which adds the order's payments, refunds and the refund action
(kameng/payments/order_admin.py)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action

from kameng.core.admin import ReadOnlyAdminMixin
from kameng.core.errors import ApplicationError
from kameng.core.masking import mask_secret
from kameng.inventory.selectors import secrets_for_order
from kameng.orders.fulfilment import (
    DELIVERY_NOTE_MAX,
    order_awaits_staff,
    order_deliver_manually,
    order_fail_delivery,
)
from kameng.orders.models import Order, OrderEvent
from kameng.orders.selectors import order_topup_target_lines

# Delivering (or failing) a manual order changes it: staff who may change orders may do it.
FULFIL_PERMISSION = "orders.change_order"
def order_for_action_or_404(*, queryset: QuerySet[Order], object_id: str) -> Order:
    """The order a detail action's address names. The address takes any path as the id (a mistyped
    `.../1/change/refund/` gives "1/change"): what is not an order's id is not found, like the change page says."""
    if not str(object_id).isdigit():
        raise Http404("订单不存在")
    return get_object_or_404(queryset, pk=object_id)


class ReadOnlyInline(ReadOnlyAdminMixin, TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False
    # Each row's title would repeat a column (the event's message, the payment or refund number).
    hide_title = True


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ("created_at", "from_status", "to_status", "kind", "text")
    readonly_fields = fields
    ordering = ("id",)

    @admin.display(description="说明")
    def text(self, event: OrderEvent) -> str:
        """What the buyer reads on the timeline (in the staff's language)."""
        return event.message


class OrderFulfilForm(forms.Form):
    DELIVERED = "delivered"
    FAILED = "failed"
    outcome = forms.ChoiceField(label="处理结果", widget=forms.RadioSelect, initial=DELIVERED, choices=[
        (DELIVERED, "已发货（款项确认为平台收入）"), (FAILED, "无法发货，全额退回买家钱包余额")])
    note = forms.CharField(label="发货说明 / 失败原因", max_length=DELIVERY_NOTE_MAX,
                           widget=forms.Textarea(attrs={"rows": 5}),
                           help_text="买家会在订单页看到：发货时写明交付内容（如充值账号、兑换方式），失败时写明原因")


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
    fields = ("number", "buyer", "sku", "title", "quantity", "unit_price", "price_lines_shown", "total_amount",
              "refunded_amount", "status", "delivery_note", "request_id", "client_ip", "created_at", "expires_at",
              "paid_at", "delivered_at", "updated_at", "delivered_keys", "topup_target_masked")
    readonly_fields = fields
    inlines: tuple[type[TabularInline], ...] = (OrderEventInline,)
    actions_detail: tuple[str, ...] = ("fulfil",)

    @admin.display(description="价格调整")
    def price_lines_shown(self, order: Order) -> str:
        """The adjustments as staff read them (会员价 −4.36), not as JSON with its Chinese escaped."""
        lines = [(str(line.get("label") or line.get("code") or ""), str(line.get("amount", "")))
                 for line in (order.price_lines or []) if isinstance(line, dict)]
        if not lines:
            return "—"
        return format_html_join(mark_safe("<br>"), "{}：{}", lines)

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

    @admin.display(description="充值信息（脱敏）")
    def topup_target_masked(self, order: Order) -> str:
        """A direct top-up's target as customer service may see it (138****1234, an account partly): the full
        value stays encrypted, for the supplier pipeline only."""
        lines = order_topup_target_lines(order=order)
        if not lines:
            return "—"
        return format_html_join(mark_safe("<br>"), "{}：<code>{}</code>",
                                ((line.label, line.value) for line in lines))

    def has_fulfil_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        # A method, not the dotted permission in @action (see the refund action in kameng/payments/order_admin.py).
        return bool(request.user.has_perm(FULFIL_PERMISSION))

    def get_actions_detail(self, request: HttpRequest, object_id: Any) -> list[Any]:
        """Offer the fulfil button only on orders waiting for staff to deliver them."""
        actions = super().get_actions_detail(request, object_id)
        order = Order.objects.filter(pk=object_id).select_related("sku__product").first()
        if order is None or not order_awaits_staff(order=order):
            return [item for item in actions if item.action_name != "orders_order_fulfil"]
        return actions

    @action(description="发货处理", url_path="fulfil", icon="local_shipping", permissions=["fulfil"])
    def fulfil(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Deliver a manual order with a note the buyer reads, or fail it (its money back to the wallet)."""
        if not self.has_fulfil_permission(request):
            raise PermissionDenied
        order = order_for_action_or_404(queryset=Order.objects.select_related("buyer", "sku__product"),
                                        object_id=object_id)
        change_url = reverse("admin:orders_order_change", args=[order.pk])
        if not order_awaits_staff(order=order):
            self.message_user(request, f"订单状态为「{order.get_status_display()}」，不是待人工发货的订单",
                              messages.ERROR)
            return HttpResponseRedirect(change_url)
        form = OrderFulfilForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                if data["outcome"] == OrderFulfilForm.DELIVERED:
                    order_deliver_manually(order_id=order.pk, note=data["note"])
                    message = f"订单 {order.number} 已发货，买家可在订单页查看发货说明"
                else:
                    order_fail_delivery(order_id=order.pk, reason=data["note"])
                    message = f"订单 {order.number} 发货失败，¥{order.total_amount} 已退回买家钱包余额"
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"发货处理 · 订单 {order.number}",
            "opts": self.model._meta,
            "order": order,
            "form": form,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/orders/order/fulfil.html", context)
