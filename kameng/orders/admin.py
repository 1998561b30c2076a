"""Back office for orders: a read-only view with the buyer's timeline, payments and refunds. Orders change only
through services; the staff actions here are a refund (to the wallet or back through the original channel) and,
for orders fulfilled by hand, delivering them with a note or failing them (kameng.orders.fulfilment)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
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
from kameng.core.money import money
from kameng.inventory.selectors import secrets_for_order
from kameng.orders.fulfilment import (
    DELIVERY_NOTE_MAX,
    is_fulfilled_later,
    order_deliver_manually,
    order_fail_delivery,
)
from kameng.orders.models import Order, OrderEvent, OrderStatus
from kameng.orders.refunds import REFUNDABLE, order_refundable_amount
from kameng.payments.models import (
    Payment,
    Refund,
    RefundDestination,
    RefundStatus,
)
from kameng.payments.refunds import order_refund
from kameng.payments.selectors import payment_original_for_order

REFUND_PERMISSION = "payments.add_refund"
# Delivering (or failing) a manual order changes it: staff who may change orders may do it.
FULFIL_PERMISSION = "orders.change_order"


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


class OrderPaymentInline(ReadOnlyInline):
    model = Payment
    verbose_name_plural = "支付单"
    fields = ("number", "channel", "amount", "refunded_amount", "status", "gateway_trade_no", "created_at",
              "paid_at")
    readonly_fields = fields
    ordering = ("id",)


class OrderRefundInline(ReadOnlyInline):
    model = Refund
    verbose_name_plural = "退款记录"
    fields = ("number", "amount", "destination", "status", "reason", "failure_reason", "created_by", "created_at",
              "finished_at")
    readonly_fields = fields
    ordering = ("id",)


class OrderRefundForm(forms.Form):
    amount = forms.DecimalField(label="退款金额（元）", min_value=Decimal("0.01"), max_digits=14, decimal_places=2)
    destination = forms.ChoiceField(label="退款去向", widget=forms.RadioSelect)
    reason = forms.CharField(label="退款原因", max_length=200, help_text="会显示在买家的订单时间线上")
    # One per rendered form: the same form posted twice (a double click, a resubmit after a slow answer) is one refund.
    request_id = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args: Any, order: Order, payment: Payment | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        refundable = order_refundable_amount(order)
        self.fields["amount"].initial = refundable
        self.fields["request_id"].initial = uuid.uuid4().hex
        self.fields["amount"].help_text = f"默认全额：可退 ¥{refundable}（订单总额 ¥{order.total_amount}，" \
                                          f"已退 ¥{money(order.refunded_amount)}）"
        choices = [(RefundDestination.WALLET.value, "钱包余额（立即到账）")]
        if payment is not None:
            remaining = money(payment.amount - payment.refunded_amount)
            choices.append((RefundDestination.ORIGINAL.value,
                            f"原路退回（{payment.channel.name}，支付单 {payment.number}，可退 ¥{remaining}）"))
        destination = self.fields["destination"]
        assert isinstance(destination, forms.ChoiceField)
        destination.choices = choices
        destination.initial = RefundDestination.WALLET.value


class OrderFulfilForm(forms.Form):
    DELIVERED = "delivered"
    FAILED = "failed"
    outcome = forms.ChoiceField(label="处理结果", widget=forms.RadioSelect, initial=DELIVERED, choices=[
        (DELIVERED, "已发货（款项确认为平台收入）"), (FAILED, "无法发货，全额退回买家钱包余额")])
    note = forms.CharField(label="发货说明 / 失败原因", max_length=DELIVERY_NOTE_MAX,
                           widget=forms.Textarea(attrs={"rows": 5}),
                           help_text="买家会在订单页看到：发货时写明交付内容（如充值账号、兑换方式），失败时写明原因")


AWAITING_STAFF = frozenset({OrderStatus.PAID, OrderStatus.FULFILLING})


def _result_message(refund: Refund) -> tuple[int, str]:
    if refund.destination == RefundDestination.WALLET:
        return messages.SUCCESS, f"已退款 ¥{refund.amount} 到买家钱包余额（退款单 {refund.number}）"
    if refund.status == RefundStatus.SUCCEEDED:
        return messages.SUCCESS, f"¥{refund.amount} 已原路退回（退款单 {refund.number}）"
    if refund.status == RefundStatus.FAILED:
        return messages.WARNING, (f"通道拒绝原路退款：{refund.failure_reason}；¥{refund.amount} 已留在买家钱包余额"
                                  f"（退款单 {refund.number}）")
    if refund.status == RefundStatus.REVIEW:
        return messages.WARNING, (f"原路退款待人工核实：{refund.failure_reason}；¥{refund.amount} 已从买家钱包转出"
                                  f"（退款单 {refund.number}，核实后在退款单列表确认）")
    waiting = f"（{refund.failure_reason}）" if refund.failure_reason else ""
    return messages.INFO, (f"原路退款处理中{waiting}：¥{refund.amount} 已从买家钱包转出，结果确认前不会重复退款；"
                           f"系统会向通道查询退款单 {refund.number} 的结果（无查询接口的通道转人工核实），"
                           f"也可在退款单列表手动处理")


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("number", "buyer", "title", "quantity", "total_amount", "refunded_amount", "status",
                    "created_at", "paid_at", "delivered_at")
    list_filter = ("status", "created_at", "paid_at")
    list_select_related = ("buyer",)
    search_fields = ("=number", "buyer__username")
    search_help_text = "按订单号（完整）或买家用户名搜索"
    date_hierarchy = "created_at"
    fields = ("number", "buyer", "sku", "title", "quantity", "unit_price", "price_lines", "total_amount",
              "refunded_amount", "status", "delivery_note", "request_id", "client_ip", "created_at", "expires_at",
              "paid_at", "delivered_at", "updated_at", "delivered_keys")
    readonly_fields = fields
    inlines = (OrderPaymentInline, OrderRefundInline, OrderEventInline)
    actions = ("refund_selected",)
    actions_detail = ("fulfil", "refund")

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

    def has_refund_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        # A method, not the dotted permission in @action: unfold's system check would query the permission table,
        # which breaks `migrate` and `makemigrations --check` on a fresh database.
        return bool(request.user.has_perm(REFUND_PERMISSION))

    def has_fulfil_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        return bool(request.user.has_perm(FULFIL_PERMISSION))

    def get_actions_detail(self, request: HttpRequest, object_id: Any) -> list[Any]:
        """Offer the refund button only on orders that can still be refunded, the fulfil button only on orders
        waiting for staff to deliver them."""
        actions = super().get_actions_detail(request, object_id)
        order = (Order.objects.filter(pk=object_id).select_related("sku__product")
                 .only("status", "total_amount", "refunded_amount", "sku__product__delivery_kind").first())
        hidden = set()
        if order is None or order.status not in REFUNDABLE or order_refundable_amount(order) <= 0:
            hidden.add("orders_order_refund")
        if order is None or not _awaits_staff(order):
            hidden.add("orders_order_fulfil")
        return [item for item in actions if item.action_name not in hidden]

    @action(description="发货处理", url_path="fulfil", icon="local_shipping", permissions=["fulfil"])
    def fulfil(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Deliver a manual order with a note the buyer reads, or fail it (its money back to the wallet)."""
        if not self.has_fulfil_permission(request):
            raise PermissionDenied
        order = get_object_or_404(Order.objects.select_related("buyer", "sku__product"), pk=object_id)
        change_url = reverse("admin:orders_order_change", args=[order.pk])
        if not _awaits_staff(order):
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

    @admin.action(description="退款（选择一个订单）", permissions=["refund"])
    def refund_selected(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        order_ids = list(queryset.values_list("pk", flat=True)[:2])
        if len(order_ids) != 1:
            self.message_user(request, "退款一次只能处理一个订单，请只选择一个", messages.ERROR)
            return None
        return HttpResponseRedirect(reverse("admin:orders_order_refund", args=[order_ids[0]]))

    @action(description="退款", url_path="refund", icon="currency_exchange", permissions=["refund"])
    def refund(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A full or partial refund to the wallet or the original channel, through payments.refunds.order_refund."""
        if not self.has_refund_permission(request):
            raise PermissionDenied
        order = get_object_or_404(Order.objects.select_related("buyer"), pk=object_id)
        change_url = reverse("admin:orders_order_change", args=[order.pk])
        if order.status not in REFUNDABLE or order_refundable_amount(order) <= 0:
            self.message_user(request, f"订单状态为「{order.get_status_display()}」，不能退款", messages.ERROR)
            return HttpResponseRedirect(change_url)
        payment = payment_original_for_order(order_id=order.pk)
        form = OrderRefundForm(request.POST or None, order=order, payment=payment)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                refund = order_refund(order_id=order.pk, amount=data["amount"], destination=data["destination"],
                                      reason=data["reason"], staff_id=request.user.pk, request_id=data["request_id"])
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                level, message = _result_message(refund)
                self.message_user(request, message, level)
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"退款 · 订单 {order.number}",
            "opts": self.model._meta,
            "order": order,
            "payment": payment,
            "refundable": order_refundable_amount(order),
            "form": form,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/orders/order/refund.html", context)


def _awaits_staff(order: Order) -> bool:
    return order.status in AWAITING_STAFF and is_fulfilled_later(str(order.sku.product.delivery_kind))
