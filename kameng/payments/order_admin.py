"""The order page as staff use it: the orders app's read-only page with the order's payments and refunds, and the
one staff action on an order, a refund (to the wallet or back through the original channel).

It lives in payments because it needs payments: orders are below payments and do not import them
(kameng.payments.admin registers it).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.decorators import action
from unfold.widgets import UnfoldAdminDecimalFieldWidget, UnfoldAdminRadioSelectWidget, UnfoldAdminTextInputWidget

from kameng.accounts.staff_reauth import staff_reauth_response
from kameng.audit.services import audit_record
from kameng.core.errors import ApplicationError
from kameng.core.money import money
from kameng.orders.admin import OrderAdmin, ReadOnlyInline, order_for_action_or_404
from kameng.orders.models import Order
from kameng.orders.refunds import REFUNDABLE, order_refundable_amount
from kameng.payments.models import Payment, Refund, RefundDestination, RefundStatus
from kameng.payments.refunds import order_refund
from kameng.payments.selectors import payment_original_for_order

REFUND_PERMISSION = "payments.add_refund"


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
    # unfold's own widgets: Django's plain inputs carry none of the theme's classes and render borderless and
    # transparent, invisible on the card.
    amount = forms.DecimalField(label="退款金额（元）", min_value=Decimal("0.01"), max_digits=14, decimal_places=2,
                                widget=UnfoldAdminDecimalFieldWidget)
    destination = forms.ChoiceField(label="退款去向", widget=UnfoldAdminRadioSelectWidget)
    reason = forms.CharField(label="退款原因", max_length=200, help_text="会显示在买家的订单时间线上",
                             widget=UnfoldAdminTextInputWidget)
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


class OrderPaymentsAdmin(OrderAdmin):
    """The order page (kameng.orders.admin.OrderAdmin) with its payments, refunds and the refund action."""

    # Added to what the orders app's page has (its timeline, its own actions), never instead of it.
    inlines = (OrderPaymentInline, OrderRefundInline, *OrderAdmin.inlines)
    actions = (*(OrderAdmin.actions or ()), "refund_selected")
    actions_detail = (*OrderAdmin.actions_detail, "refund")

    def has_refund_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        # A method, not the dotted permission in @action: unfold's system check would query the permission table,
        # which breaks `migrate` and `makemigrations --check` on a fresh database.
        return bool(request.user.has_perm(REFUND_PERMISSION))

    def get_actions_detail(self, request: HttpRequest, object_id: Any) -> list[Any]:
        """Offer the refund button only on orders that can still be refunded."""
        actions = super().get_actions_detail(request, object_id)
        order = Order.objects.filter(pk=object_id).only("status", "total_amount", "refunded_amount").first()
        if order is None or order.status not in REFUNDABLE or order_refundable_amount(order) <= 0:
            return [item for item in actions if item.action_name != "orders_order_refund"]
        return actions

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
        order = order_for_action_or_404(queryset=Order.objects.select_related("buyer"), object_id=object_id)
        change_url = reverse("admin:orders_order_change", args=[order.pk])
        if order.status not in REFUNDABLE or order_refundable_amount(order) <= 0:
            self.message_user(request, f"订单状态为「{order.get_status_display()}」，不能退款", messages.ERROR)
            return HttpResponseRedirect(change_url)
        payment = payment_original_for_order(order_id=order.pk)
        form = OrderRefundForm(request.POST or None, order=order, payment=payment)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            if data["amount"] > money(settings.KAMENG_STAFF_REAUTH_REFUND_OVER):
                # A large refund asks for the 2FA code again (the form's fields are carried through the code page).
                challenge = staff_reauth_response(request)
                if challenge is not None:
                    return challenge
            try:
                refund = order_refund(order_id=order.pk, amount=data["amount"], destination=data["destination"],
                                      reason=data["reason"], staff_id=request.user.pk, request_id=data["request_id"])
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                audit_record(action="refund.create", request=request, instance=refund,
                             after={"order": order.number, "amount": refund.amount,
                                    "destination": refund.destination, "status": refund.status,
                                    "reason": refund.reason})
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
