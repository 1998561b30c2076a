"""Back office: the risk events, read-only (listed in the admin index under 风控 for staff who may view them)."""

from __future__ import annotations

from django.contrib import admin
from unfold.admin import ModelAdmin

from kameng.core.admin import ReadOnlyAdminMixin
from kameng.risk.models import RiskEvent


@admin.register(RiskEvent)
class RiskEventAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("created_at", "kind", "severity", "message", "remote_addr", "user")
    list_filter = ("kind", "severity")
    search_fields = ("message", "kind")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    fields = ("created_at", "kind", "severity", "message", "detail", "remote_addr", "user")
    readonly_fields = fields
