"""Back office: the risk events, read-only."""

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
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
