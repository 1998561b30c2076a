"""Admin for the simulated 易支付 V2 gateway's merchants, trades and refunds (demo and debugging only)."""

from __future__ import annotations

from django.contrib import admin
from unfold.admin import ModelAdmin

from kameng.simulators.admin_base import ReadOnlyRecordAdmin
from kameng.simulators.epay_v2.models import SimulatedEpayV2Merchant, SimulatedEpayV2Refund, SimulatedEpayV2Trade


@admin.register(SimulatedEpayV2Merchant)
class SimulatedEpayV2MerchantAdmin(ModelAdmin):
    list_display = ["pid", "name", "is_active", "created_at"]
    exclude = ["platform_private_key"]  # never shown; the platform public key is what a channel needs
    readonly_fields = ["platform_public_key"]


@admin.register(SimulatedEpayV2Trade)
class SimulatedEpayV2TradeAdmin(ReadOnlyRecordAdmin):
    list_display = ["trade_no", "merchant", "out_trade_no", "money", "refunded_money", "status", "notify_attempts",
                    "notified_at", "created_at"]
    list_filter = ["status"]
    search_fields = ["trade_no", "out_trade_no"]


@admin.register(SimulatedEpayV2Refund)
class SimulatedEpayV2RefundAdmin(ReadOnlyRecordAdmin):
    list_display = ["refund_no", "merchant", "out_refund_no", "trade", "money", "created_at"]
    search_fields = ["refund_no", "out_refund_no"]
