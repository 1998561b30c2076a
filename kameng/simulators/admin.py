"""Admin for the simulated gateway's merchants and trades (demo and debugging only)."""

from __future__ import annotations

from django.contrib import admin
from unfold.admin import ModelAdmin

from kameng.simulators.admin_base import ReadOnlyRecordAdmin
from kameng.simulators.models import SimulatedEpayMerchant, SimulatedEpayTrade


@admin.register(SimulatedEpayMerchant)
class SimulatedEpayMerchantAdmin(ModelAdmin):
    list_display = ["pid", "name", "is_active", "created_at"]
    exclude = ["key"]


@admin.register(SimulatedEpayTrade)
class SimulatedEpayTradeAdmin(ReadOnlyRecordAdmin):
    list_display = ["trade_no", "merchant", "out_trade_no", "money", "status", "notify_attempts", "notified_at",
                    "created_at"]
    list_filter = ["status"]
    search_fields = ["trade_no", "out_trade_no"]
