"""Back office: the risk events, read-only (listed in the admin index under 风控 for staff who may view them)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from unfold.admin import ModelAdmin

from kameng.risk.models import RiskEvent


@admin.register(RiskEvent)
class RiskEventAdmin(ModelAdmin):
    list_display = ("created_at", "kind", "severity", "message", "remote_addr", "user")
    list_filter = ("kind", "severity")
    search_fields = ("message", "kind")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    fields = ("created_at", "kind", "severity", "message", "detail", "remote_addr", "user")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
