"""Admin for the simulated UnionPay's merchants and transactions (demo and debugging only)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin

from kameng.simulators.admin_base import ReadOnlyRecordAdmin
from kameng.simulators.unionpay.models import SimulatedUnionPayMerchant, SimulatedUnionPayTrade
from kameng.simulators.unionpay.services import simulated_unionpay_notify_send


@admin.register(SimulatedUnionPayMerchant)
class SimulatedUnionPayMerchantAdmin(ModelAdmin):
    list_display = ["mer_id", "name", "cert_id", "is_active", "created_at"]
    readonly_fields = ["cert_id"]


@admin.register(SimulatedUnionPayTrade)
class SimulatedUnionPayTradeAdmin(ReadOnlyRecordAdmin):
    list_display = ["query_id", "merchant", "order_id", "txn_type", "amount", "refunded_amount", "status",
                    "notify_attempts", "notified_at", "created_at"]
    list_filter = ["status", "txn_type"]
    search_fields = ["query_id", "order_id"]
    actions = ["resend_notify"]

    @admin.action(description="重新发送后台通知")
    def resend_notify(self, request: HttpRequest, queryset: QuerySet[SimulatedUnionPayTrade]) -> None:
        for trade in queryset.filter(status="succeeded").exclude(back_url=""):
            attempt = simulated_unionpay_notify_send(trade_id=trade.pk, is_forced=True)
            self.message_user(request, f"{trade.query_id}：{attempt.response[:100]}",
                              messages.SUCCESS if attempt.is_delivered else messages.WARNING)
