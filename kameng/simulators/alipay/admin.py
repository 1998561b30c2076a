"""Admin for the simulated Alipay's apps and trades (demo and debugging only)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin

from kameng.simulators.admin_base import ReadOnlyRecordAdmin
from kameng.simulators.alipay.models import SimulatedAlipayApp, SimulatedAlipayRefund, SimulatedAlipayTrade
from kameng.simulators.alipay.services import simulated_alipay_notify_send


@admin.register(SimulatedAlipayApp)
class SimulatedAlipayAppAdmin(ModelAdmin):
    list_display = ["app_id", "name", "seller_id", "is_active", "created_at"]
    exclude = ["platform_private_key"]
    readonly_fields = ["seller_id", "platform_public_key"]


@admin.register(SimulatedAlipayTrade)
class SimulatedAlipayTradeAdmin(ReadOnlyRecordAdmin):
    list_display = ["trade_no", "app", "out_trade_no", "method", "total_amount", "refunded_amount", "status",
                    "notify_attempts", "notified_at", "created_at"]
    list_filter = ["status", "method"]
    search_fields = ["trade_no", "out_trade_no"]
    actions = ["resend_notify"]

    @admin.action(description="重新发送异步通知")
    def resend_notify(self, request: HttpRequest, queryset: QuerySet[SimulatedAlipayTrade]) -> None:
        for trade in queryset.filter(status="TRADE_SUCCESS").exclude(notify_url=""):
            attempt = simulated_alipay_notify_send(trade_id=trade.pk, is_forced=True)
            self.message_user(request, f"{trade.trade_no}：{attempt.response[:100]}",
                              messages.SUCCESS if attempt.is_delivered else messages.WARNING)


@admin.register(SimulatedAlipayRefund)
class SimulatedAlipayRefundAdmin(ReadOnlyRecordAdmin):
    list_display = ["trade", "out_request_no", "refund_amount", "created_at"]
